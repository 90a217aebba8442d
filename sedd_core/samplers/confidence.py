"""Confidence ("confidence", absorbing graph, not exact; LLaDA / MaskGIT style): `steps` calls, each
deciding the open slots the model is surest of, so that `decided_by(n)` of them are decided after
call n (the measure and the schedule are sampling controls: controls.py).
"""
import torch

from ..controls import confidence as sureness
from ..controls import decided_by
from .base import Sampler


def confidence(ctx, x, t_start, steps):
    B, f64, c = len(x), torch.float64, ctx.controls
    now = ctx.open(x)
    total = now.sum(1)  # (B,)
    t = torch.full((B,), t_start, dtype=f64, device=x.device)
    yield ctx.state(0, steps, t, x, torch.zeros_like(now), now)
    for n in range(1, steps + 1):
        want = decided_by(n, steps, total, c.schedule) - (total - now.sum(1))  # (B,) to decide now
        pick = torch.zeros_like(now)
        if want.any():
            t = t_start * (1 - (total - now.sum(1)) / total.clamp(min=1))  # the masked fraction, as a time
            w, _ = ctx.scorer(x, ctx.noise.total(t), now)
            w = w[:, :ctx.graph.tokens]
            sure = torch.full(now.shape, -torch.inf, dtype=f64, device=x.device)
            sure[now] = sureness(c.shape(w, now.nonzero()[:, 1]) if c.shapes_tokens else w, c.confidence)
            ranks = sure.argsort(1, descending=True).argsort(1)  # (B, L): 0 = the surest open slot
            pick = now & (ranks < want[:, None])
            x = x.masked_scatter(pick, ctx.drawer(now)(w[pick[now]], pick[now]))
            now = now & ~pick
        t = t_start * (now.sum(1) / total.clamp(min=1)).double()
        yield ctx.state(n, steps, t, x, pick, now)


CONFIDENCE = Sampler("confidence", confidence, "decides the surest slots first, in the given number of steps",
                     exact=False, absorbing_only=True, takes_steps=True, calls=lambda steps, free: min(steps, free),
                     controls=("confidence", "schedule"))
