"""Confidence ("confidence", absorbing graph, not exact; LLaDA / MaskGIT style): `steps` calls, each
deciding the open slots the model is surest of, so that `decided_by(n)` of them are decided after
call n. Its options: the measure of sureness `confidence` ("max": the best token's probability,
"entropy": the lowest entropy, "margin": the gap between the two best; of the distribution the
sampling controls shape) and the `schedule` of the decided count ("linear" or "cosine").
"""
import math

import torch

from .base import Sampler

MEASURES = ("max", "entropy", "margin")
SCHEDULES = ("linear", "cosine")


def sureness(w: torch.Tensor, kind: str) -> torch.Tensor:
    """How sure each row's token distribution is (N,), higher is surer; w (N, tokens) exp-scores."""
    p = w.double() / w.double().sum(1, keepdim=True)
    if kind == "max":
        return p.amax(1)
    if kind == "entropy":
        return (p * p.clamp_min(1e-300).log()).sum(1)  # minus the entropy
    best = p.topk(min(2, p.shape[1]), 1).values
    return best[:, 0] - (best[:, 1] if best.shape[1] > 1 else 0)


def decided_by(n: int, calls: int, total: torch.Tensor, schedule: str) -> torch.Tensor:
    """How many of `total` (B,) open slots the confidence predictor has decided after call n of `calls`."""
    frac = n / calls if schedule == "linear" else 1 - math.cos(math.pi / 2 * n / calls)
    return torch.ceil(total * frac - 1e-9).long().clamp(max=total) if n < calls else total


def confidence(ctx, x, t_start, steps, confidence="max", schedule="linear"):
    B, f64 = len(x), torch.float64
    now = ctx.open(x)
    total = now.sum(1)  # (B,)
    t = torch.full((B,), t_start, dtype=f64, device=x.device)
    yield ctx.state(0, steps, t, x, torch.zeros_like(now), now)
    for n in range(1, steps + 1):
        want = decided_by(n, steps, total, schedule) - (total - now.sum(1))  # (B,) to decide now
        pick = torch.zeros_like(now)
        if want.any():
            t = t_start * (1 - (total - now.sum(1)) / total.clamp(min=1))  # the masked fraction, as a time
            w, _ = ctx.scorer(x, ctx.noise.total(t), now)
            w = w[:, :ctx.graph.tokens]
            shaped = ctx.weights(w, now.nonzero()[:, 1])
            shaped = ctx.controls.shape(shaped) if ctx.controls.shapes_tokens else shaped
            sure = torch.full(now.shape, -torch.inf, dtype=f64, device=x.device)
            sure[now] = sureness(shaped, confidence)
            ranks = sure.argsort(1, descending=True).argsort(1)  # (B, L): 0 = the surest open slot
            pick = now & (ranks < want[:, None])
            x = x.masked_scatter(pick, ctx.drawer(now)(w[pick[now]], pick[now]))
            now = now & ~pick
        t = t_start * (now.sum(1) / total.clamp(min=1)).double()
        yield ctx.state(n, steps, t, x, pick, now)


def check(options):
    for name, choices in (("confidence", MEASURES), ("schedule", SCHEDULES)):
        if options[name] not in choices:
            raise ValueError(f"{name} must be one of {', '.join(choices)}, got {options[name]!r}")


CONFIDENCE = Sampler("confidence", confidence, "decides the surest slots first, in the given number of steps",
                     exact=False, absorbing_only=True, takes_steps=True, calls=lambda steps, free: min(steps, free),
                     options={"confidence": "max", "schedule": "linear"}, check=check)
