"""One prepared GPU check: `python -m benchmarks.gpu_check [--device cuda|cuda:N|cpu] [--quick]`.

Prints one markdown table and one JSON line; exits 1 when a check with a pass mark fails, else 0.
Where no GPU is present (and the device is not the CPU) it says so and exits 0. Sized for well under 8
minutes on one GPU: the CPU side of the parity rows takes seconds, the GPU rows less, and the
two-process run (two GPUs only) about as long as on a CPU, where it takes 9 s. `--quick` shrinks every
size so that `--device cpu --quick` runs the same code paths in a second (tests/test_gpu_check.py).

Model: sedd-small's shape (hidden 768, 12 blocks, 12 heads, V = 50258) with random weights; DDiT
zero-initialises its adaLN and output layers (every block would be the identity and every score 0),
so those get random weights too. Rows:
- parity: the log-scores of 4 partly masked sequences of 256 slots (t from 0.05 to 1) in fp32 on the
  device against fp32 on the CPU (DDiT holds no autocast of its own: precision is the caller's).
- bf16 (`sedd_core.pipeline.Network`: bf16 weights under autocast, as the pipeline runs it) against
  fp32 on the device: the log-scores, and score_entropy_loss (same t, same x_t).
- training tokens/s at L = 1024 (batch 8, AdamW, bf16 autocast as the trainer runs it; median of 5
  steps after 2 warm-up).
- one analytic sampler step at L = 1024, every slot masked, and a full first_hitting infill of 64 free
  slots in a 1024-slot canvas (it passes when every free slot is decided and the fixed ones are kept).
- two processes training training/configs/tiny_cpu.yaml for 20 steps over NCCL (`accelerate launch
  --multi_gpu`), on the bundled model's held-out text, when two GPUs exist; skipped otherwise.
Peak GPU memory is torch.cuda.max_memory_allocated over each row's work.

Relative error: |a - b| / |b - row means of b| (Frobenius norms) for log-scores: every row of a
log-score carries the constant -log(e^sigma - 1) - log(V - 1), which would hide the error if it were
counted in the scale; |a - b| / |b| for the loss. Tolerances (TOLERANCES): fp32 on another device
1e-4 (the same float32 sums in another order: about 1e-6 is expected); bf16 log-scores 5e-2 (8
mantissa bits, about 4e-3 per rounding, over 12 blocks: 6e-3 under CPU autocast), bf16 loss 1e-2 (a
sum over every slot, where roundings average out: 1e-4 under CPU autocast).
"""
import argparse
import copy
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from sedd_core import Fixed, ModelConfig, SEDDConfig, Settings, build, final, sample_iter, score_entropy_loss
from sedd_core.pipeline import Network
from sedd_core.precision import autocast

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "assets" / "sedd-prose-mini" / "heldout.txt"
ROWS = ("forward parity fp32, device vs CPU", "bf16 vs fp32: log-scores",
        "bf16 vs fp32: training loss", "one analytic sampler step", "first_hitting infill",
        "training, bf16 autocast", "two-process NCCL training")
TOLERANCES = {ROWS[0]: 1e-4, ROWS[1]: 5e-2, ROWS[2]: 1e-2}


@dataclass(frozen=True)
class Sizes:
    shape: dict  # ModelConfig's sizes
    tokens: int
    parity: tuple  # (sequences, slots)
    train: tuple  # (batch, slots, warm-up steps, timed steps)
    canvas: int  # slots of the sampler rows
    free: int  # free slots of the infill


FULL = Sizes(dict(hidden_size=768, cond_dim=128, n_blocks=12, n_heads=12), 50257, (4, 256), (8, 1024, 2, 5), 1024, 64)
QUICK = Sizes(dict(hidden_size=32, cond_dim=16, n_blocks=2, n_heads=4), 300, (2, 16), (2, 32, 1, 1), 32, 8)


def small_model(sizes: Sizes):
    """(model, graph, noise) on the CPU with random weights everywhere, the zero-initialised layers too."""
    cfg = SEDDConfig(tokens=sizes.tokens, model=ModelConfig(length=max(sizes.canvas, sizes.train[1]), **sizes.shape))
    torch.manual_seed(0)
    model, graph, noise = build(cfg)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "adaLN_modulation" in name or name.startswith("output_layer.linear"):
                p.normal_(0.0, 1.0 if name.endswith("bias") else 0.02, generator=g)
    return model.eval(), graph, noise


def rel_scores(a, b) -> float:
    a, b = a.double().cpu(), b.double().cpu()
    return float((a - b).norm() / (b - b.mean(-1, keepdim=True)).norm())


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device):
    """(fn(), seconds) of one call, the device's queue drained before and after."""
    sync(device)
    start = time.perf_counter()
    out = fn()
    sync(device)
    return out, time.perf_counter() - start


def measured(fn, device):
    """(fn(), seconds, peak GPU MiB or None) of one call."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    out, seconds = timed(fn, device)
    return out, seconds, torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None


def row(check, value, unit, details, seconds, peak=None, ok=None):
    tol = TOLERANCES.get(check)
    if tol is not None:
        ok = value <= tol
    return {"check": check, "value": value, "unit": unit, "tolerance": tol, "ok": ok, "peak_mib": peak,
            "seconds": seconds, "details": details}


def parity_rows(model, on, graph, noise, sizes, device):
    """`on` (the model on the device) in fp32 against `model` on the CPU in fp32, bf16 against fp32 on
    the device."""
    B, L = sizes.parity
    g = torch.Generator().manual_seed(1)
    x0 = torch.randint(0, graph.tokens, (B, L), generator=g)
    t = torch.linspace(0.05, 1.0, B)
    sigma = noise.total(t)
    x = graph.sample_transition(x0, sigma[:, None], g)
    where = f"{B} x {L} slots, t 0.05 to 1"
    with torch.no_grad():
        cpu = model(x, sigma)
        xd, sd, fast = x.to(device), sigma.to(device), Network(on, "bf16")
        fp32, secs, peak = measured(lambda: on(xd, sd), device)
        rows = [row(ROWS[0], rel_scores(fp32, cpu), "rel. error", where, secs, peak)]
        low, secs, peak = measured(lambda: fast(xd, sd), device)
        rows.append(row(ROWS[1], rel_scores(low, fp32), "rel. error", where, secs, peak))
        x0d, td = x0.to(device), t.to(device)

        def loss(fn):
            gen = torch.Generator(device).manual_seed(2)
            return float(score_entropy_loss(fn, graph, noise, x0d, t=td, generator=gen).mean())

        def both():
            return loss(fast), loss(on)
        (low, high), secs, peak = measured(both, device)
        rows.append(row(ROWS[2], abs(low - high) / abs(high), "rel. error", f"{where}: {low:.4f} vs {high:.4f}",
                        secs, peak))
    return rows


def train_row(model, graph, noise, sizes, device):
    """Tokens/s of AdamW steps on score_entropy_loss under bf16 autocast (dropout on, as in training)."""
    batch, length, warmup, steps = sizes.train
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    gen = torch.Generator(device).manual_seed(3)
    x0 = torch.randint(0, graph.tokens, (batch, length), generator=gen, device=device)

    def step():
        with autocast("bf16", device):
            loss = score_entropy_loss(model, graph, noise, x0, stratified=True, generator=gen).mean()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    def run():
        times = [timed(step, device)[1] for _ in range(warmup + steps)]
        return statistics.median(times[warmup:])
    median, _, peak = measured(run, device)
    model.eval()
    return row(ROWS[5], batch * length / median, "tokens/s",
               f"L = {length}, batch {batch}, {median:.3f} s/step, median of {steps} after {warmup}", median, peak)


def sampler_rows(model, graph, noise, sizes, device):
    """One analytic step with every slot masked; a whole first_hitting infill of `free` slots."""
    L, free = sizes.canvas, sizes.free
    tokens = torch.randint(0, graph.tokens, (1, L), generator=torch.Generator().manual_seed(4)).to(device)

    def states(fixed, predictor):
        return sample_iter(model, graph, noise, (1, L), Settings(predictor, 128), Fixed(tokens, fixed),
                           generator=torch.Generator(device).manual_seed(5))

    none = torch.zeros(1, L, dtype=torch.bool, device=device)

    def one_step():
        it = states(none, "analytic")
        next(it)
        return next(it)
    one_step()  # warm-up
    _, secs, peak = measured(one_step, device)
    rows = [row(ROWS[3], secs, "s", f"L = {L}, all masked, 128-step grid", secs, peak)]
    fixed = torch.ones(1, L, dtype=torch.bool, device=device)
    fixed[:, (L - free) // 2:(L + free) // 2] = False

    state, secs, peak = measured(lambda: final(states(fixed, "first_hitting")), device)
    ok = bool((state.tokens[~fixed] < graph.tokens).all() and torch.equal(state.tokens[fixed], tokens[fixed]))
    rows.append(row(ROWS[4], secs, "s", f"{free} free of {L} slots, {state.calls} network calls", secs, peak, ok))
    return rows


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def nccl_row(gpus: int):
    """training/configs/tiny_cpu.yaml for 20 steps on two processes (NCCL on GPUs), in a temporary folder."""
    if gpus < 2:
        return row(ROWS[6], None, "", f"skipped: {gpus} GPU(s) here, two needed", 0.0)
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
               "--main_process_port", str(free_port()), "-m", "training.train", "training/configs/tiny_cpu.yaml",
               f"data.train=[{CORPUS}]", f"data.cache_dir={tmp}/cache", f"training.out_dir={tmp}/run",
               "training.steps=20"]
        env = os.environ | {"NCCL_DEBUG": "INFO", "PYTHONPATH": str(ROOT)}
        start = time.perf_counter()
        try:
            proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        except subprocess.TimeoutExpired:
            return row(ROWS[6], None, "", "did not finish within 300 s", time.perf_counter() - start, ok=False)
        secs = time.perf_counter() - start
        metrics = Path(tmp, "run", "metrics.jsonl")
        last = [json.loads(line) for line in metrics.read_text().splitlines()] if metrics.is_file() else []
        losses = [r for r in last if r.get("step") == 20 and "loss" in r]
        nccl = "NCCL INFO" in proc.stdout + proc.stderr
        if proc.returncode or not losses or not nccl:
            tail = " ".join((proc.stderr or proc.stdout)[-300:].split())
            return row(ROWS[6], None, "", f"exit {proc.returncode}, NCCL seen: {nccl}: {tail}", secs, ok=False)
        r = losses[-1]
        return row(ROWS[6], r["tokens_per_s"], "tokens/s", f"20 steps, loss {r['loss']:.3f}, NCCL", secs, ok=True)


def guarded(check, fn):
    """fn()'s rows, or one failed row naming the error (the other rows still run)."""
    start = time.perf_counter()
    try:
        return fn()
    except (RuntimeError, ValueError) as err:
        return [row(check, None, "", f"error: {' '.join(str(err).split())[:300]}", time.perf_counter() - start,
                    ok=False)]


def cell(v, fmt):
    return "" if v is None else format(v, fmt)


def table(rows) -> str:
    lines = ["| check | result | tolerance | pass | peak GPU MiB | seconds | details |", "|---" * 7 + "|"]
    for r in rows:
        value = r["value"]
        shown = "" if value is None else (f"{value:.2e}" if r["unit"] == "rel. error" else
                                          f"{value:,.0f}" if r["unit"] == "tokens/s" else f"{value:.3f}")
        ok = {True: "yes", False: "**NO**", None: ""}[r["ok"]]
        lines.append(f"| {r['check']} | {shown} {r['unit']} | {cell(r['tolerance'], 'g')} | {ok} "
                     f"| {cell(r['peak_mib'], ',.0f')} | {r['seconds']:.2f} | {r['details']} |")
    return "\n".join(lines)


def device_name(name: str) -> torch.device:
    try:
        return torch.device(name)
    except RuntimeError as err:
        raise argparse.ArgumentTypeError(f"{name!r} is no device: use cuda, cuda:N or cpu") from err


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.gpu_check", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", type=device_name, default="cuda", help="cuda (the default), cuda:N or cpu")
    p.add_argument("--quick", action="store_true", help="tiny sizes: the code paths in seconds, even on CPU")
    a = p.parse_args(argv)
    device = a.device
    if device.type == "cuda" and not torch.cuda.is_available():
        print("gpu_check: no GPU is present here (torch.cuda.is_available() is False): nothing to check. "
              "`--device cpu --quick` runs the same code paths on the CPU.")
        print(json.dumps({"gpu": None, "ok": True, "rows": []}))
        return 0
    sizes = QUICK if a.quick else FULL
    gpus = torch.cuda.device_count() if device.type == "cuda" else 0
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    start = time.perf_counter()
    model, graph, noise = small_model(sizes)
    on = model if device.type == "cpu" else copy.deepcopy(model).to(device)
    rows = guarded(ROWS[0], lambda: parity_rows(model, on, graph, noise, sizes, device))
    rows += guarded(ROWS[3], lambda: sampler_rows(on, graph, noise, sizes, device))
    rows += guarded(ROWS[5], lambda: [train_row(on, graph, noise, sizes, device)])  # last: it trains
    rows += [nccl_row(gpus)]
    ok = all(r["ok"] is not False for r in rows)
    print(f"gpu_check on {device} ({name or platform.processor() or platform.machine()}), {gpus} GPU(s), "
          f"torch {torch.__version__}, CUDA {torch.version.cuda}, {'quick' if a.quick else 'full'} sizes, "
          f"{time.perf_counter() - start:.0f} s in all: {'all checks pass' if ok else 'A CHECK FAILED'}\n")
    print(table(rows))
    print(json.dumps({"gpu": name, "device": str(device), "gpus": gpus, "torch": torch.__version__,
                      "cuda": torch.version.cuda, "quick": a.quick, "ok": ok, "rows": rows}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
