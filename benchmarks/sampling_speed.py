"""Sampling speed and memory: our sampler's steps against one model forward and the official step.

python -m benchmarks.sampling_speed [--repeats 3] [--threads N] [--device cpu|cuda] [--skip-official-infill]

Models: the bundled one (L = 128) and a randomly initialised model of louaaron/sedd-small's shape
(hidden 768, 12 blocks, 12 heads, V = 50258) at L = 128 and 1024. For each, with every slot masked and
with half of them decided, one analytic step of `sample_iter` (the head runs only on masked slots),
one full (B, L, V) forward, their ratio, the step's peak extra memory, and the same step done the
official way (`benchmarks/official.py`) on the same weights. Then a 16-free-slot infill of a 64-slot
canvas with the sedd-small shape: analytic at 128 steps, first_hitting, and the official sampler;
and the calls of the cached analytic sampler on a time-independent model of that shape against
T (1 - (1 - 1/T)^L). Medians over `repeats`; prints a markdown table and one JSON line per row.
CPU memory is the peak resident set (VmHWM, reset through /proc/self/clear_refs) above the resident
set before the step, measured in a child process in which glibc returns freed blocks at once
(MALLOC_MMAP_THRESHOLD_; that slows allocation, so no time is measured there).
"""
import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time

import torch

from benchmarks import official
from sedd_core import Fixed, ModelConfig, SEDDConfig, SEDDPipeline, Settings, build, final, sample_iter

SMALL = dict(hidden_size=768, cond_dim=128, n_blocks=12, n_heads=12, scale_by_sigma=True, dropout=0.0)


def rss_mib(field: str) -> float:
    return int(re.search(rf"{field}:\s+(\d+)", open("/proc/self/status").read()).group(1)) / 1024


def seconds(fn, device, repeats) -> float:
    """Median wall time of `repeats` calls of fn()."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def extra_mib(fn, device) -> float:
    """Peak memory of one call of fn() above the memory in use before it."""
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        fn()
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - base) / 2**20
    base = rss_mib("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM to the current resident set
    fn()
    return rss_mib("VmHWM") - base


def small_model(length, device, time_conditioning=True):
    """sedd-small's shape, random weights; the output layer small, so scores are near the exact ones'."""
    torch.manual_seed(0)
    cfg = SEDDConfig(tokens=50257, model=ModelConfig(length=length, time_conditioning=time_conditioning, **SMALL))
    model, graph, noise = build(cfg)
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.02)
    torch.nn.init.normal_(model.output_layer.linear.weight, std=0.002)
    return model.to(device).eval(), graph, noise


def first_step(model, graph, noise, x, fixed, predictor="analytic", steps=128):
    """Run `sample_iter` from x (fixed slots hold x) to its first state after the start."""
    it = sample_iter(model, graph, noise, tuple(x.shape), Settings(predictor, steps), Fixed(x, fixed),
                     generator=torch.Generator(x.device).manual_seed(0))
    next(it)
    return next(it)


def step_rows(name, model, graph, noise, length, device, repeats, memory=False):
    """One row per (all, half) masked: times, or (memory=True) peak extra memory, of the three calls."""
    rows = []
    g = torch.Generator().manual_seed(1)
    tokens = torch.randint(0, graph.tokens, (1, length), generator=g).to(device)
    for masked in ("all", "half"):
        fixed = torch.zeros(1, length, dtype=torch.bool, device=device)
        if masked == "half":
            fixed[:, ::2] = True  # decided slots: the network sees them, nothing is asked of them
        x = torch.where(fixed, tokens, graph.mask)
        t = torch.full((1, 1), 1.0, device=device)
        calls = {"forward": lambda: model(x, noise.total(t[0])),
                 "step": lambda: first_step(model, graph, noise, tokens, fixed),
                 "official": lambda: official.analytic_step(model, noise, x, t, 1 / 128)}
        with torch.no_grad():
            calls["forward"]()  # warm-up
            if memory:
                row = {f"{k}_extra_mib": extra_mib(fn, device) for k, fn in calls.items()}
            else:
                row = {f"{k}_s": seconds(fn, device, repeats) for k, fn in calls.items()}
        rows.append({"what": f"one analytic step, {name}, L = {length}, {masked} masked", **row})
    return rows


def infill_rows(device, repeats, skip_official):
    model, graph, noise = small_model(64, device)
    g = torch.Generator().manual_seed(2)
    x = torch.randint(0, graph.tokens, (1, 64), generator=g).to(device)
    fixed = torch.ones(1, 64, dtype=torch.bool, device=device)
    fixed[:, 24:40] = False  # 16 free slots in the middle of a 64-slot canvas
    rows = []

    def run(predictor, steps=128, on=model, seed=0):
        return final(sample_iter(on, graph, noise, (1, 64), Settings(predictor, steps), Fixed(x, fixed),
                                 generator=torch.Generator(device).manual_seed(seed))).calls

    for predictor in ("analytic", "first_hitting"):
        run(predictor, 4)  # warm-up
        rows.append({"what": f"infill 16 of 64 slots, sedd-small shape, {predictor}"
                             + (" 128 steps" if predictor == "analytic" else ""),
                     "calls": run(predictor), "wall_s": seconds(lambda: run(predictor), device, repeats)})
    if not skip_official:
        rows.append({"what": "infill 16 of 64 slots, sedd-small shape, official analytic 128 steps",
                     "calls": 129, "wall_s": seconds(lambda: official.infill(model, noise, x, fixed, 128), device, 1)})
    free_model, _, _ = small_model(64, device, time_conditioning=False)
    calls = [run("analytic", on=free_model, seed=seed) for seed in range(20)]
    expected = 128 * (1 - (1 - 1 / 128) ** 16)
    rows.append({"what": "infill 16 of 64, time-independent sedd-small shape, cached analytic 128 steps, 20 seeds",
                 "calls": statistics.mean(calls), "expected_calls": expected,
                 "calls_over_expected": statistics.mean(calls) / expected})
    return rows


def table(rows):
    lines = ["| what | forward s | step s | step / forward | step extra MiB | forward extra MiB | official step s "
             "| official / ours | official extra MiB |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "forward_s" in r:
            lines.append(f"| {r['what']} | {r['forward_s']:.3f} | {r['step_s']:.3f} | {r['step_s'] / r['forward_s']:.3f} "
                         f"| {r['step_extra_mib']:.0f} | {r['forward_extra_mib']:.0f} | {r['official_s']:.3f} "
                         f"| {r['official_s'] / r['step_s']:.2f} | {r['official_extra_mib']:.0f} |")
    lines += ["", "| what | wall s | network calls |", "|---|---|---|"]
    for r in rows:
        if "wall_s" in r:
            lines.append(f"| {r['what']} | {r['wall_s']:.2f} | {r['calls']} |")
        elif "expected_calls" in r:
            lines.append(f"| {r['what']} | | {r['calls']:.2f} (expected {r['expected_calls']:.2f}, "
                         f"ratio {r['calls_over_expected']:.3f}) |")
    return "\n".join(lines)


def all_step_rows(device, repeats, memory):
    pipe = SEDDPipeline.from_pretrained(None, str(device))
    rows = step_rows("bundled", pipe.model, pipe.graph, pipe.noise, pipe.length, device, repeats, memory)
    for length in (128, 1024):
        rows += step_rows("sedd-small shape", *small_model(length, device), length, device, repeats, memory)
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--skip-official-infill", action="store_true", help="skip the slowest row (official, 128 steps)")
    p.add_argument("--memory-child", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    device = torch.device(a.device)
    if a.threads:
        torch.set_num_threads(a.threads)
    if a.memory_child:
        print(json.dumps(all_step_rows(device, 1, memory=True)))
        return
    rows = all_step_rows(device, a.repeats, memory=False)
    if device.type == "cpu":  # memory in a child process whose allocator returns freed blocks at once
        env = os.environ | {"MALLOC_MMAP_THRESHOLD_": "65536"}
        child = subprocess.run([sys.executable, "-m", "benchmarks.sampling_speed", "--memory-child",
                                "--threads", str(torch.get_num_threads())], env=env, capture_output=True, text=True,
                               check=True)
        memory = json.loads(child.stdout.strip().splitlines()[-1])
    else:
        memory = all_step_rows(device, 1, memory=True)
    rows = [r | m for r, m in zip(rows, memory)]
    rows += infill_rows(device, a.repeats, a.skip_official_infill)
    print(f"device {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else platform.processor()}), "
          f"threads {torch.get_num_threads()}, torch {torch.__version__}, medians of {a.repeats}\n")
    print(table(rows))
    for r in rows:
        print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in r.items()}))


if __name__ == "__main__":
    main()
