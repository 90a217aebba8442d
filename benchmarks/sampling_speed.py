"""Sampling speed: seconds per reverse-diffusion step and per full sample, for a model folder.

python -m benchmarks.sampling_speed [--model FOLDER_OR_HUB_ID] [--steps 64] [--batch 1] [--repeats 3] [--threads N]
Prints one JSON line with medians over `repeats` full runs of `steps` steps (+ the final denoising step).
"""
import argparse
import json
import platform
import statistics
import time

import torch

from sedd_core import SEDDPipeline


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None)
    p.add_argument("--steps", type=int, default=64)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--device", default=None)
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    pipe = SEDDPipeline.from_pretrained(a.model, a.device)
    ids, fixed = pipe.canvas()
    totals, firsts = [], []
    for seed in range(a.repeats):
        start = time.perf_counter()
        for state in pipe.stream(ids, fixed, a.steps, seed=seed, batch=a.batch):
            if state.step == 1:
                firsts.append(time.perf_counter() - start)
        totals.append(time.perf_counter() - start)
    total = statistics.median(totals)
    print(json.dumps({
        "model": str(a.model or "bundled"), "length": pipe.length, "steps": a.steps, "batch": a.batch,
        "device": str(pipe.device), "threads": torch.get_num_threads(), "median_total_s": round(total, 3),
        "median_first_step_s": round(statistics.median(firsts), 4),
        "s_per_step": round(total / (a.steps + 1), 4), "machine": platform.processor() or platform.machine(),
    }))


if __name__ == "__main__":
    main()
