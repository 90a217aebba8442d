"""Evaluate a model folder on held-out text: ELBO perplexity bound (with its Monte Carlo error), and
optionally a unigram baseline and the AR baseline on the same blocks.

`python -m training.evaluate --model FOLDER --text HELDOUT.txt [--blocks 16] [--points 64] [--seed 0]
[--unigram-from TRAIN.txt] [--ar-run runs/bundled_ar]` prints one JSON object.
"""
import argparse
import json
import math
from pathlib import Path

import numpy as np
import torch

from sedd_core import SEDDPipeline
from sedd_core.likelihood import elbo

from .ar import ar_perplexity, build_ar
from .config import load_config
from .state import load_latest


def heldout_blocks(pipe: SEDDPipeline, text: str, blocks: int) -> torch.Tensor:
    """The first `blocks` full blocks of model length from `text`: (blocks, L)."""
    ids = pipe.tokenizer.encode(text)
    L = pipe.length
    if len(ids) < blocks * L:
        raise ValueError(f"the held-out text has {len(ids)} tokens, fewer than {blocks} blocks of {L}")
    return torch.tensor(ids[: blocks * L]).view(blocks, L)


def elbo_perplexity(pipe: SEDDPipeline, x0: torch.Tensor, points: int, seed: int) -> dict:
    """exp(mean ELBO per token), and the standard error of the mean per-token ELBO across blocks."""
    gen = torch.Generator(pipe.device).manual_seed(seed)
    per_block = elbo(pipe.model, pipe.graph, pipe.noise, x0.to(pipe.device), points=points,
                     generator=gen).double().mean(dim=-1)  # (blocks,) nats per token
    mean = per_block.mean().item()
    stderr = per_block.std().item() / math.sqrt(len(per_block)) if len(per_block) > 1 else float("nan")
    return {"elbo_nats_per_token": mean, "stderr_nats_per_token": stderr, "perplexity_bound": math.exp(mean)}


def unigram_perplexity(pipe: SEDDPipeline, train_text: str, x0: torch.Tensor) -> float:
    """Perplexity of add-one-smoothed token frequencies of the training text."""
    counts = np.bincount(pipe.tokenizer.encode(train_text), minlength=pipe.config.tokens) + 1.0
    logp = np.log(counts / counts.sum())
    return float(math.exp(-logp[x0.numpy()].mean()))


def ar_perplexity_of_run(run: Path, x0: torch.Tensor, eos_id: int) -> dict:
    """Exact perplexity of the AR baseline's EMA weights (newest checkpoint of its run)."""
    cfg = load_config(run / "train_config.json")
    state = load_latest(run / "checkpoints")
    if state is None:
        raise FileNotFoundError(f"{run} has no checkpoint")
    model = build_ar(cfg.sedd_config(state["tokens"]))
    model.load_state_dict(state["model"] | state["ema"]["shadow"])  # the averaged weights over the raw ones
    return {"perplexity": ar_perplexity(model.eval(), x0, eos_id), "step": state["step"]}


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m training.evaluate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None, help="model folder or hub id (default: the bundled model)")
    p.add_argument("--text", required=True, help="held-out text file")
    p.add_argument("--blocks", type=int, default=16)
    p.add_argument("--points", type=int, default=64, help="quadrature points in t")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--unigram-from", default=None, help="training text for the unigram baseline")
    p.add_argument("--ar-run", default=None, help="run folder of the AR baseline (training/configs/bundled_ar.yaml)")
    args = p.parse_args(argv)
    pipe = SEDDPipeline.from_pretrained(args.model, "cpu")
    x0 = heldout_blocks(pipe, Path(args.text).read_text(encoding="utf-8"), args.blocks)
    result = {"blocks": args.blocks, "length": pipe.length, "points": args.points, "seed": args.seed,
              "sedd": elbo_perplexity(pipe, x0, args.points, args.seed)}
    if args.unigram_from:
        result["unigram_perplexity"] = unigram_perplexity(pipe, Path(args.unigram_from).read_text(encoding="utf-8"), x0)
    if args.ar_run:
        result["ar"] = ar_perplexity_of_run(Path(args.ar_run), x0, pipe.tokenizer.eos_id)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
