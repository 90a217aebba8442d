"""Training throughput: tokens/s and peak memory of SEDD training steps for a given size, batch and length.

python -m benchmarks.train_throughput --hidden 256 --blocks 4 --heads 4 --cond 64 --vocab 4096 \
    --length 128 --batch 32 --steps 10 [--threads N] [--device cpu|cuda] [--precision auto|fp32|bf16] \
    [--compile] [--fused] [--all-rows]
Prints one JSON line: median step time over the timed steps (after 3 warm-up steps, which include
torch.compile's), tokens/s, peak memory, the CPU model. `--precision bf16` is bf16 autocast with
fp32 master weights and optimizer (as the trainer runs it); `--fused` the fused AdamW kernel.
"""
import argparse
import json
from functools import partial
import resource
import statistics
import time

import torch

from sedd_core import ModelConfig, SEDDConfig, build, score_entropy_loss
from sedd_core.precision import PRECISIONS, autocast, resolve

from .machine import describe


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name, default in [("hidden", 256), ("blocks", 4), ("heads", 4), ("cond", 64), ("vocab", 4096),
                          ("length", 128), ("batch", 32), ("steps", 10), ("threads", 0)]:
        p.add_argument(f"--{name}", type=int, default=default)
    p.add_argument("--graph", choices=("absorb", "uniform"), default="absorb")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--precision", choices=PRECISIONS, default="fp32")
    p.add_argument("--compile", action="store_true", help="torch.compile the network (inductor)")
    p.add_argument("--fused", action="store_true", help="fused AdamW")
    p.add_argument("--all-rows", action="store_true",
                   help="run the output head on every slot, not only the masked ones (the trainer before this change)")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    cfg = SEDDConfig(tokens=a.vocab, graph=a.graph, noise="loglinear" if a.graph == "absorb" else "geometric",
                     model=ModelConfig(a.hidden, a.cond, a.blocks, a.heads, a.length, a.graph == "absorb", 0.0))
    model, graph, noise = build(cfg)
    model.to(a.device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=a.fused or None)
    net = torch.compile(model) if a.compile else model
    if a.all_rows:  # a plain callable: the loss cannot ask it for the masked rows only
        net = partial(net)
    precision = resolve(a.precision, a.device)
    gen = torch.Generator(a.device).manual_seed(0)
    x0 = torch.randint(0, a.vocab, (a.batch, a.length), device=a.device, generator=gen)
    times = []
    for step in range(a.steps + 3):
        if a.device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        with autocast(precision, a.device):
            loss = score_entropy_loss(net, graph, noise, x0, generator=gen).mean()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if a.device.startswith("cuda"):
            torch.cuda.synchronize()
        if step >= 3:
            times.append(time.perf_counter() - start)
    median = statistics.median(times)
    peak = (torch.cuda.max_memory_allocated() / 2**20 if a.device.startswith("cuda")
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print(json.dumps({
        "params_M": round(sum(p.numel() for p in model.parameters()) / 1e6, 2), "batch": a.batch,
        "length": a.length, "device": a.device, "threads": torch.get_num_threads(), "precision": precision,
        "compile": a.compile, "fused": a.fused, "all_rows": a.all_rows,
        "median_step_s": round(median, 4), "tokens_per_s": round(a.batch * a.length / median),
        "peak_memory_MiB": round(peak), "machine": describe(a.device),
    }))


if __name__ == "__main__":
    main()
