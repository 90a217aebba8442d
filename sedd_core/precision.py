"""Precision is the caller's choice: "auto", "fp32" or "bf16", resolved here and nowhere else.

"auto" is bf16 where the hardware multiplies bf16 natively (a CUDA device that supports it; a CPU
whose flags include `amx_bf16` or `avx512_bf16`, read from /proc/cpuinfo, never guessed) and fp32
elsewhere. The network itself holds no autocast (as in nanoGPT): training wraps its loss in
`autocast` with fp32 master weights; inference (`pipeline.Network`) runs a `bf16_copy` of the
matmul weights (on a CPU, casting fp32 weights on every call costs more than the matmuls save).
Scores leave the network as float32 either way, and everything after (the samplers' float64 draws,
the ELBO sums) is unchanged: the samplers stay exact given the scores they are handed.
"""
import copy
from contextlib import nullcontext
from pathlib import Path

import torch
import torch.nn as nn

PRECISIONS = ("auto", "fp32", "bf16")
BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")


def cpu_flags(cpuinfo: str = "/proc/cpuinfo") -> set:
    """The CPU's feature flags (empty where the file is missing, e.g. not Linux)."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return set()
    return {flag for line in text.splitlines() if line.startswith("flags") for flag in line.split(":", 1)[1].split()}


def native_bf16(device) -> bool:
    """True when `device` multiplies bf16 matrices in hardware."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return device.type == "cpu" and any(flag in cpu_flags() for flag in BF16_CPU_FLAGS)


def resolve(precision: str, device) -> str:
    """"fp32" or "bf16" for `precision` on `device` ("auto": bf16 where it is native)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}; got {precision!r}")
    if precision == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    return precision


def autocast(precision: str, device):
    """The context a forward (or a training step) runs in: bf16 autocast, or nothing for fp32."""
    device = torch.device(device)
    if resolve(precision, device) == "fp32":
        return nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


def bf16_copy(model: nn.Module) -> nn.Module:
    """A copy of `model` whose `nn.Linear` weights are bf16 and which shares every other tensor with it
    (embeddings, norms and the residual stream stay fp32; no second embedding in memory). Run it under
    `autocast("bf16", device)`; `model` itself is untouched."""
    linear = {id(p) for m in model.modules() if isinstance(m, nn.Linear) for p in m.parameters()}
    shared = {id(t): t for t in (*model.parameters(), *model.buffers()) if id(t) not in linear}
    copied = copy.deepcopy(model, shared)
    for module in copied.modules():
        if isinstance(module, nn.Linear):
            module.to(torch.bfloat16)
    return copied
