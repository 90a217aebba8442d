"""Ship the AR baseline as a model folder with a measured model card.

python -m training.bundle_ar --run runs/bundled_ar --config training/configs/bundled_ar.yaml \
    --out assets/ar-prose-mini --heldout assets/sedd-prose-mini/heldout.txt
Exports the EMA weights of the run's newest complete checkpoint in the hub layout (config.json,
model.safetensors, tokenizer.json; `training.ar_folder.load_ar` reads it with this repository
alone), measures its exact perplexity on the first blocks of the held-out text (the SEDD model's
card uses the same ones; the card names that model when the text lies in its folder), draws samples,
copies the training curves and writes the card (README.md) and eval.json. Bad input ends it with a
one-line message and exit code 2.
"""
import argparse
import json
import sys
from pathlib import Path

import torch

from evaluation.likelihood import measure, summarize
from evaluation.text import blocks
from sedd_core.checkpoint import export_folder
from sedd_core.files import restored_on_failure

from .bundle import overfitting, run_summary
from .objectives import AR, load
from .plots import write_plots
from .run_model import from_run

BLOCKS, SEED = 16, 0


def card(out: Path, ev: dict, run: dict, samples: list, history: str, config: str) -> str:
    m, t = run["config"]["model"], run["config"]["training"]
    sedd = Path(ev["heldout"]).parent
    of = (f"[{sedd.name}](../{sedd.name})" if (sedd / "config.json").is_file()
          else f"the SEDD model whose held-out text is `{ev['heldout']}`")
    command = f"python -m training.train {config}" + (f" training.steps={ev['step']}" if ev["step"] != t["steps"] else "")
    reproduce = (f"python -m evaluation likelihood --model {out} --data {ev['heldout']} "
                 f"--blocks {ev['blocks']} --precision fp32")
    lines = [
        "---", "license: mit", "language: en", "tags: [causal-lm, baseline, sedd-toolkit]", "---", "",
        f"# {out.name}", "",
        f"The autoregressive baseline of {of}: the same transformer blocks and",
        "sizes, causal attention, trained by next-token cross-entropy on the same corpus, tokenizer, batch",
        "and context. It is the offline judge of `python -m evaluation quality`, and the exact",
        "perplexity that the SEDD model's ELBO bound is set beside.", "",
        "## Use", "",
        "```python",
        "from training.ar_folder import load_ar          # this repository is all it needs",
        f"model, tokenizer, config = load_ar(\"{out}\")   # a causal DDiT (eval mode), TextTokenizer, ARConfig",
        "```", "",
        f"- Judge of generated text: `python -m evaluation quality --judge {out}`"
        " (assets/ar-prose-mini is the default judge).",
        "- Each sequence is read after `<|endoftext|>` (BOS), as in training; the context is"
        f" {m['length']} tokens.", "",
        "## Model and training", "",
        f"- Causal DDiT blocks (training/ar.py): hidden {m['hidden_size']}, {m['n_blocks']} blocks, {m['n_heads']}"
        f" heads, context {m['length']} tokens, {ev['params_M']:.2f}M parameters; EMA weights (decay {t['ema']}).",
        f"- Tokenizer: byte-level BPE, {ev['vocab']} tokens (`tokenizer.json`, the SEDD model's).",
        f"- Training: `{command}` — {ev['step']} steps of"
        f" {t['batch_size']} sequences, {ev['step'] * t['batch_size'] * m['length'] / 1e6:.1f}M tokens seen,"
        f" {run['hours']:.2f} h on a 2-core CPU, AdamW lr {run['config']['optim']['lr']}."
        + (f" {history}" if history else ""),
        "", "## Evaluation", "",
        f"Held-out text: the first {ev['blocks']} blocks of {ev['length']} tokens of `{ev['heldout']}`,"
        " never trained on.", "",
        "| model | measure | perplexity |", "| --- | --- | --- |",
        f"| {out.name} (step {ev['step']}) | exact, next-token NLL {ev['nats_per_token']:.4f}"
        f" ± {ev['stderr_blocks']:.4f} nats/token (s.e. over blocks) | {ev['perplexity']:.2f} |", "",
        f"Reproduce: `{reproduce}`", "",
        *([validation_line(ev["validation"]), ""] if ev["validation"] else []),
        "![loss and validation perplexity](curves.png)", "",
        "## Samples", "", f"Ancestral sampling, float64 draws, seed {SEED}:", "",
    ] + [f"```text\n{s.strip()}\n```\n" for s in samples]
    (out / "README.md").write_text("\n".join(lines))
    return reproduce


def validation_line(v: dict) -> str:
    """The card's sentence on the run's validation curve (training.bundle.overfitting)."""
    line = (f"On the validation split (the trainer's evaluations) its perplexity was lowest at step {v['best_step']:,}"
            f" ({v['best_valid_ppl']:.2f}, {v['best_tokens'] / 1e6:.1f}M tokens seen) and is {v['last_valid_ppl']:.2f} at step"
            f" {v['last_step']:,} ({v['last_tokens'] / 1e6:.1f}M tokens)")
    if not v["overfits"]:
        return line + "."
    return line + (": it overfits the training split, and these weights are the ones at the SEDD model's tokens, as"
                   " the ratio on its card requires.")


def bundle(run: Path, out: Path, heldout: Path, config: str, history: str = "") -> dict:
    objective, model, tokenizer_file, step = from_run(run)
    if not isinstance(objective, AR):
        raise ValueError(f"{run} is not an AR baseline's run (objective: ar); bundle a SEDD run with training.bundle")
    if not heldout.is_file():
        raise FileNotFoundError(f"held-out text {heldout} does not exist")
    with restored_on_failure(out):  # a failure leaves the folder as it was: no new weights under an old card
        export_folder(out, model, objective.config, tokenizer_file)
        loaded = load(out, "cpu", precision="fp32")  # exact: the SEDD card's AR row is measured in fp32 too
        x0 = blocks(loaded.tokenizer, [heldout.read_text(encoding="utf-8")], loaded.length, BLOCKS, str(heldout))
        r = summarize(measure(loaded, x0, BLOCKS, 1, SEED, "cpu", "held-out blocks"), exact=True)
        ev = {"heldout": str(heldout), "blocks": r["blocks"], "length": r["length"], "step": step,
              "vocab": objective.config.tokens, "params_M": sum(p.numel() for p in model.parameters()) / 1e6,
              "perplexity": r["perplexity"], "nats_per_token": r["nats_per_token"], "stderr_blocks": r["stderr_blocks"]}
        write_plots(run / "metrics.jsonl", out / "curves")
        generator = torch.Generator().manual_seed(SEED)
        drawn = loaded.objective.sample(loaded.model, 2, generator, "cpu")
        samples = [loaded.tokenizer.decode(s.tolist()) for s in drawn]
        summary = run_summary(run)
        ev["validation"] = overfitting(summary)
        ev["command"] = card(out, ev, summary, samples, history, config)
        (out / "eval.json").write_text(json.dumps(ev, indent=2))
    return ev


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m training.bundle_ar", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", required=True, help="the AR baseline's run folder (its checkpoints and metrics)")
    p.add_argument("--config", required=True, help="the training config the run was started with (for the card)")
    p.add_argument("--out", required=True, help="the model folder to write, e.g. assets/ar-prose-mini")
    p.add_argument("--heldout", required=True, help="held-out text (the SEDD card's: assets/sedd-prose-mini/heldout.txt)")
    p.add_argument("--history", default="", help="how the run went (restarts, changed settings), for the card")
    args = p.parse_args(argv)
    try:
        ev = bundle(Path(args.run), Path(args.out), Path(args.heldout), args.config, args.history)
    except (ValueError, OSError) as err:
        print(f"error: {' '.join(str(err).split())}", file=sys.stderr)
        sys.exit(2)
    print(json.dumps(ev, indent=2))


if __name__ == "__main__":
    main()
