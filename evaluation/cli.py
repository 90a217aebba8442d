"""Evaluate models: `python -m evaluation {likelihood,quality,mauve} ...` (`--help` on each).

- likelihood: perplexity on text with the paper's protocol; the ELBO bound of a SEDD model, the
  exact perplexity of an AR baseline folder (`likelihood.py`, data in `text.py`);
- quality: generative perplexity under a judge and unigram entropy of samples, for every sampler and
  step count (`quality.py`, judges in `judge.py`);
- mauve: MAUVE of prompted generations, when the mauve-text package is installed (`mauve.py`).
Each run writes OUT/NAME.md (a markdown table) and OUT/NAME.json, both with the command that made
them; likelihood also the per-token nats (OUT/likelihood-DATA.npz), quality the figure
(OUT/quality.png, OUT/quality.html) and every sample (OUT/quality_samples.jsonl). Bad input (an
unknown dataset, an empty file, a model or judge that does not load, a missing package) ends the
command with a one-line message and exit code 2.

The functions at the end measure the bundled model for its card (`training/bundle.py`).
"""
import argparse
import json
import math
import shlex
import sys
from pathlib import Path

import numpy as np
import torch

from sedd_core import SEDDPipeline
from sedd_core.cli import option_flags
from sedd_core.precision import PRECISIONS

from . import likelihood, mauve, quality, text
from training.ar import ar_perplexity
from .text import SETS, documents
from training.objectives import load
from training.run_model import from_run

DEFAULT_JUDGE = "assets/ar-prose-mini"  # the AR baseline we ship (python -m training.bundle_ar)


def whole(low: int):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        return value
    return parse


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m evaluation", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    names = ", ".join(SETS)

    def common(name, help):
        s = sub.add_parser(name, help=help, description=help)
        s.add_argument("--model", default=None, help="model folder, run folder or hub id (default: the bundled model)")
        s.add_argument("--seed", type=whole(0), default=0)
        s.add_argument("--device", default=device)
        s.add_argument("--precision", choices=PRECISIONS, default="auto",
                       help="the network's: auto (bf16 where the hardware has it), fp32 or bf16")
        s.add_argument("--out", default="runs/eval", help="folder for the table, JSON and files (default runs/eval)")
        return s

    s = common("likelihood", "perplexity on text: ELBO bound (SEDD) or exact (an AR baseline folder)")
    s.add_argument("--data", nargs="+", required=True,
                   help=f"{names} (NAME@SPLIT), hf:NAME[:CONFIG][@SPLIT], .txt or .jsonl")
    s.add_argument("--blocks", type=whole(1), default=None, help="at most this many blocks per source (default all)")
    s.add_argument("--batch-size", type=whole(1), default=16, help="blocks per batch")
    s.add_argument("--points", type=whole(1), default=128, help="quadrature points (or Monte Carlo draws) in t")
    s.add_argument("--method", choices=("quadrature", "mc"), default="quadrature")
    s.add_argument("--repeats", type=whole(1), default=2,
                   help="independent ELBO estimates (>= 2 gives the Monte Carlo error)")
    s.set_defaults(run=likelihood.run)

    s = common("quality", "generative perplexity and unigram entropy of samples against sampling steps")
    s.add_argument("--judge", default=DEFAULT_JUDGE,
                   help=f"causal LM folder or hub id (default {DEFAULT_JUDGE}; the paper: gpt2-large)")
    s.add_argument("--samples", type=whole(1), default=64, help="samples per sampler run")
    s.add_argument("--steps", type=whole(1), nargs="+", default=[16, 32, 64, 128, 256, 512, 1024])
    s.add_argument("--predictors", nargs="+", default=None, help="default: every sampler of the model")
    s.add_argument("--length", type=whole(1), default=None, help="tokens per sample (default: the model's length)")
    s.add_argument("--batch-size", type=whole(1), default=16, help="samples drawn at once")
    s.add_argument("--judge-batch-size", type=whole(1), default=16, help="sequences the judge scores at once")
    s.add_argument("--reference", default=None, help="held-out text judged the same way (a source as for likelihood)")
    s.add_argument("--temperature", type=float, default=1.0, help="sampling control (1: exact; 0: the argmax)")
    s.add_argument("--top-k", type=whole(0), default=0, help="sampling control (0: off)")
    s.add_argument("--top-p", type=float, default=1.0, help="sampling control (1: off)")
    option_flags(s)  # each sampler option (remask, confidence, per_call, ...), for the samplers that have it
    s.add_argument("--sweep", action="store_true",
                   help="instead: a grid of sampling controls at the first --steps value, drawn as a frontier of "
                        "generative perplexity against unigram entropy, the exact samplers marked")
    s.set_defaults(run=quality.run)

    s = common("mauve", "MAUVE of prompted generations (needs pip install mauve-text)")
    s.add_argument("--data", required=True, help="where prompts and human continuations come from")
    s.add_argument("--featurizer", default=DEFAULT_JUDGE, help="causal LM folder or hub id (MAUVE's usual: gpt2-large)")
    s.add_argument("--samples", type=whole(1), default=64, help="prompts")
    s.add_argument("--prompt-tokens", type=whole(1), default=32)
    s.add_argument("--steps", type=whole(1), nargs="+", default=[128])
    s.add_argument("--predictors", nargs="+", default=None)
    s.add_argument("--batch-size", type=whole(1), default=16)
    s.add_argument("--judge-batch-size", type=whole(1), default=16)
    s.set_defaults(run=mauve.run)
    return p


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser().parse_args(argv)
    try:
        args.run(args, "python -m evaluation " + shlex.join(argv))
    except (ValueError, OSError, ImportError) as err:  # bad input: one line
        print(f"error: {' '.join(str(err).split())}", file=sys.stderr)
        sys.exit(2)


# The bundled model's card (training/bundle.py) measures with these.

def card_figure(folder, blocks: int, points: int, seed: int) -> dict:
    """The model card's ELBO figure: `python -m evaluation likelihood --model FOLDER --data
    FOLDER/heldout.txt --blocks B --points P --seed S --repeats 1 --batch-size B --precision fp32`, in the
    card's words (fp32: the same figure on every machine)."""
    loaded = load(folder, "cpu", points, precision="fp32")
    label, docs = documents(str(Path(folder) / "heldout.txt"))
    x0 = text.blocks(loaded.tokenizer, docs, loaded.length, blocks, label)
    if len(x0) < blocks:
        raise ValueError(f"{label} has {len(x0)} blocks of {loaded.length} tokens, fewer than {blocks}")
    r = likelihood.summarize(likelihood.measure(loaded, x0, blocks, 1, seed, "cpu"), exact=False)
    return {"elbo_nats_per_token": r["nats_per_token"], "stderr_nats_per_token": r["stderr_blocks"],
            "perplexity_bound": r["perplexity"]}


def card_quality(folder, judge, samples: int, seed: int, out) -> dict:
    """The model card's sample-quality figures, from the very command the card prints:
    `python -m evaluation quality --model FOLDER --judge JUDGE --predictors first_hitting --samples N
    --seed S --reference FOLDER/heldout.txt --precision fp32 --device cpu` (fp32: the same samples on every machine)."""
    argv = ["quality", "--model", str(folder), "--judge", str(judge), "--predictors", "first_hitting",
            "--samples", str(samples), "--seed", str(seed), "--reference", f"{folder}/heldout.txt",
            "--precision", "fp32", "--device", "cpu"]
    main([*argv, "--out", str(out)])
    got = json.loads((Path(out) / "quality.json").read_text())
    keep = ("gen_ppl", "gen_ppl_stderr", "entropy", "entropy_stderr")
    return {"command": "python -m evaluation " + shlex.join(argv), "judge": got["judge"], "samples": samples,
            "first_hitting": {k: got["results"][0][k] for k in keep},
            "heldout": {k: got["reference"][k] for k in keep}}


def unigram_perplexity(pipe: SEDDPipeline, train_ids: list, x0: torch.Tensor) -> float:
    """Perplexity of add-one-smoothed token frequencies of the training text's token ids."""
    counts = np.bincount(train_ids, minlength=pipe.config.tokens) + 1.0
    logp = np.log(counts / counts.sum())
    return float(math.exp(-logp[x0.numpy()].mean()))


def ar_perplexity_of_run(run: Path, x0: torch.Tensor, eos_id: int) -> dict:
    """Exact perplexity of the AR baseline's EMA weights (newest checkpoint of its run)."""
    _, model, _, step = from_run(Path(run))
    return {"perplexity": ar_perplexity(model, x0, eos_id), "step": step}


if __name__ == "__main__":
    main()
