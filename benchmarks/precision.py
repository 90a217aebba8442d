"""What bf16 changes, and what it buys: `python -m benchmarks.precision [--model FOLDER] [--repeats 3]`.

1. Accuracy, on a model folder (default: the bundled one) and its held-out text: the log-scores of
   the masked slots of 16 held-out blocks noised at 8 times in (0, 1), bf16 against fp32 (largest
   and mean |difference|, nats), and the card's ELBO (16 blocks, 64 points, seed 0) in both
   precisions (nats per token and the relative difference).
2. Speed at louaaron/sedd-small's shape (randomly initialised, V = 50,258): a 16-slot first_hitting
   infill of a 64-slot canvas, fp32 against bf16, as one-thread CPU time (time.process_time with
   torch.set_num_threads(1)) and two-thread wall time; medians of `repeats`.
Prints a markdown table (with the CPU model) and one JSON line.
"""
import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from sedd_core import ModelConfig, SEDDConfig, SEDDPipeline, build, final
from sedd_core.checkpoint import resolve
from sedd_core.likelihood import elbo
from sedd_core.pipeline import Network
from sedd_core.tokenizer import TextTokenizer

from .machine import describe
from .sampling_speed import SMALL


def heldout_blocks(pipe, folder: Path, blocks: int) -> torch.Tensor:
    ids = pipe.tokenizer.encode((folder / "heldout.txt").read_text())
    L = pipe.length
    return torch.tensor(ids[: blocks * L]).view(blocks, L)


def accuracy(folder: Path) -> dict:
    pipe = SEDDPipeline.from_pretrained(folder, "cpu", precision="fp32")
    fp32, bf16 = pipe.scorer, Network(pipe.model, "bf16")
    x0 = heldout_blocks(pipe, folder, 16)
    gen = torch.Generator().manual_seed(0)
    diffs = []
    with torch.no_grad():
        for t in torch.linspace(0.05, 0.95, 8):
            sigma = pipe.noise.total(t.expand(len(x0)))
            xt = pipe.graph.sample_transition(x0, sigma[:, None], gen)
            rows = xt == pipe.graph.mask
            a, b = fp32(xt, sigma, rows=rows), bf16(xt, sigma, rows=rows)  # (N, V) each
            diffs.append((a - b).abs()[:, :pipe.config.tokens].flatten())
    d = torch.cat(diffs)
    nats = {}
    for name, scorer in (("fp32", fp32), ("bf16", bf16)):
        g = torch.Generator().manual_seed(0)
        nats[name] = float(elbo(scorer, pipe.graph, pipe.noise, x0, points=64, generator=g).double().mean())
    return {"model": str(folder), "max_abs_logscore_diff": float(d.max()), "mean_abs_logscore_diff": float(d.mean()),
            "elbo_fp32": nats["fp32"], "elbo_bf16": nats["bf16"],
            "elbo_rel_diff": abs(nats["bf16"] - nats["fp32"]) / nats["fp32"]}


def infill_times(repeats: int) -> dict:
    """A 16-slot first_hitting infill of a 64-slot canvas at sedd-small's shape, per precision."""
    cfg = SEDDConfig(tokens=50257, model=ModelConfig(length=1024, **SMALL))
    torch.manual_seed(0)
    model, graph, noise = build(cfg)
    model.eval()
    tok = TextTokenizer.load(resolve(None))  # any tokenizer: only ids are sampled
    ids = [5] * 64
    fixed = [not 24 <= n < 40 for n in range(64)]
    out = {}
    for precision in ("fp32", "bf16"):
        pipe = SEDDPipeline(model, graph, noise, tok, cfg, precision=precision)
        run = lambda: final(pipe.stream(ids, fixed, predictor="first_hitting", seed=0))  # noqa: E731
        for threads, clock in ((1, time.process_time), (2, time.perf_counter)):
            torch.set_num_threads(threads)
            run()  # warm-up
            times = []
            for _ in range(repeats):
                start = clock()
                run()
                times.append(clock() - start)
            out[f"{precision}_{'cpu_1thread' if threads == 1 else 'wall_2threads'}_s"] = statistics.median(times)
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None, help="model folder with heldout.txt (default: the bundled model)")
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()
    threads = torch.get_num_threads()
    acc = accuracy(resolve(a.model))
    speed = infill_times(a.repeats)
    torch.set_num_threads(threads)
    print(f"machine: {describe('cpu')}, torch {torch.__version__}\n")
    print("| what | fp32 | bf16 | difference |\n|---|---|---|---|")
    print(f"| log-scores of masked held-out slots ({acc['model']}) | | | max {acc['max_abs_logscore_diff']:.4f}, "
          f"mean {acc['mean_abs_logscore_diff']:.5f} nats |")
    print(f"| ELBO on the held-out blocks, nats/token | {acc['elbo_fp32']:.4f} | {acc['elbo_bf16']:.4f} | "
          f"{100 * acc['elbo_rel_diff']:.3f} % |")
    for kind, label in (("cpu_1thread", "one-thread CPU s"), ("wall_2threads", "two-thread wall s")):
        f, b = speed[f"fp32_{kind}_s"], speed[f"bf16_{kind}_s"]
        print(f"| sedd-small shape, 16-slot first_hitting infill of 64 slots, {label} | {f:.3f} | {b:.3f} | "
              f"{f / b:.2f}x |")
    print(json.dumps(acc | speed | {"machine": describe("cpu")}))


if __name__ == "__main__":
    main()
