"""The machine a benchmark ran on, in words: the CPU model (or the GPU's name) and its bf16 units."""
from pathlib import Path

import torch

from sedd_core.precision import BF16_CPU_FLAGS, cpu_flags


def cpu_model(cpuinfo: str = "/proc/cpuinfo") -> str:
    try:
        lines = Path(cpuinfo).read_text().splitlines()
    except OSError:
        return "unknown CPU"
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), "unknown CPU")


def describe(device="cpu") -> str:
    """E.g. 'Intel(R) Xeon(R) Processor (amx_bf16, avx512_bf16), 2 cores' or 'NVIDIA H100 80GB HBM3'."""
    if torch.device(device).type == "cuda":
        return torch.cuda.get_device_name()
    flags = [f for f in BF16_CPU_FLAGS if f in cpu_flags()]
    return f"{cpu_model()} ({', '.join(flags) or 'no native bf16'}), {torch.get_num_threads()} threads"
