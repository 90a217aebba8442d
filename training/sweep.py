"""A size sweep at equal CPU time: `python -m training.sweep CONFIG --cpu-seconds S --sizes 256x4 384x6 ...`.

Each size (hidden x blocks, 64-wide heads) trains from scratch from CONFIG for S seconds of this
process's CPU time (`training.cpu_seconds`; CPU time, not wall time, so a busy machine does not
shortchange one size), then its EMA weights are scored on the held-out blocks with the trainer's
own validation ELBO. The runs go to OUT/HxB/ and resume like any run (`--resume`); the table
(size, parameters, steps, tokens, tokens per CPU second, held-out ELBO bound) is printed and written
to OUT/sweep.md.
"""
import argparse
import json
import sys
from pathlib import Path

from .config import load_config
from .train import Trainer


def run_size(config: str, size: str, out: Path, cpu_seconds: float, overrides, resume: bool) -> dict:
    hidden, blocks = (int(v) for v in size.split("x"))
    folder = out / size
    values = [f"model.hidden_size={hidden}", f"model.n_blocks={blocks}", f"model.n_heads={hidden // 64}",
              f"training.out_dir={folder}", f"training.cpu_seconds={cpu_seconds}", "training.steps=1000000",
              "training.eval_every=1000000", "training.sample_every=1000000", *overrides]
    cfg = load_config(config, values)
    done = (folder / "sweep.json")
    if done.is_file():
        return json.loads(done.read_text())
    trainer = Trainer(cfg, resume=resume)
    params = sum(p.numel() for p in trainer.core.parameters())
    trainer.run()
    rows = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    losses = [r for r in rows if "tokens_per_s" in r]
    result = {"size": size, "params_M": round(params / 1e6, 2), "steps": trainer.step,
              "tokens_M": round(trainer.step * cfg.training.batch_size * cfg.model.length / 1e6, 2),
              "tokens_per_s": round(losses[-1]["tokens_per_s"]), "valid_ppl_bound": rows[-1].get("valid_ppl"),
              "last_loss": losses[-1]["loss"]}
    trainer.close()
    done.write_text(json.dumps(result))
    return result


def table(results) -> str:
    lines = ["| size | params (M) | steps | tokens (M) | tokens/s | last train loss (nats/token) | held-out ELBO bound (ppl) |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['size']} | {r['params_M']} | {r['steps']} | {r['tokens_M']} | {r['tokens_per_s']:,} | "
              f"{r['last_loss']:.3f} | {r['valid_ppl_bound']:.2f} |" for r in results]
    return "\n".join(lines) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m training.sweep", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config")
    p.add_argument("--sizes", nargs="+", default=["256x4", "384x6", "512x6"], help="HIDDENxBLOCKS, 64-wide heads")
    p.add_argument("--cpu-seconds", type=float, default=900.0)
    p.add_argument("--out", default="runs/sweep")
    p.add_argument("--resume", action="store_true")
    p.add_argument("overrides", nargs="*", help="section.key=value for every size")
    a = p.parse_intermixed_args(argv)
    out = Path(a.out)
    try:
        results = [run_size(a.config, s, out, a.cpu_seconds, a.overrides, a.resume) for s in a.sizes]
    except ValueError as err:
        print(f"error: {' '.join(str(err).split())}", file=sys.stderr)
        sys.exit(2)
    text = table(results)
    (out / "sweep.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
