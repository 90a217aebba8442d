"""Tau-leaping ("analytic", the official default, and "euler"): `steps` predictor steps on the time
grid linspace(t_start, eps, steps + 1), then the final denoising step (steps.py); steps + 1 states
after the start. Options: `eps`; `remask` (ReMDM style): while remask_from >= t > remask_until, each
decided free slot is masked again with this probability per step, so early choices can be revised
(fixed slots never are, and the run still ends with no mask; not exact). For the absorbing graph under log-linear noise the two steps coincide:
expm1(dsigma) = sigma'(t) (t - s), so Euler draws what analytic draws.
"""
import torch

from .base import Sampler, number
from .steps import analytic, denoise, euler


def tau_leaping(step):
    """The loop around one predictor step (`steps.analytic` or `steps.euler`)."""
    def run(ctx, x, t_start, steps, eps=1e-5, remask=0.0, remask_from=0.5, remask_until=0.1):
        f64, B = torch.float64, len(x)
        times = torch.linspace(t_start, eps, steps + 1, dtype=f64).tolist() + [0.0]
        now = ctx.open(x)
        yield ctx.state(0, steps + 1, torch.full((B,), t_start, dtype=f64), x, torch.zeros_like(now), now)
        for n in range(steps + 1):
            t, s = (torch.tensor(v, dtype=f64, device=x.device) for v in times[n:n + 2])
            changed = torch.zeros_like(now)
            if now.any():
                w, scale = ctx.scorer(x, ctx.noise.total(t).expand(B), now)
                rows = x[now]  # (N,)
                move = denoise if n == steps else step  # the last call goes from eps to 0
                new = move(ctx.graph, rows, w, scale, ctx.noise, t, s, ctx.drawer(now), ctx.generator)
                changed[now] = new != rows
                x = x.masked_scatter(now, new)
            if remask and n < steps and remask_from >= float(s) > remask_until:
                again = (ctx.free & (x != ctx.graph.mask)
                         & (torch.rand(x.shape, generator=ctx.generator, device=x.device) < remask))
                x, changed = x.masked_fill(again, ctx.graph.mask), changed | again
            now = ctx.open(x) if n < steps else torch.zeros_like(now)
            yield ctx.state(n + 1, steps + 1, s.expand(B), x, changed, now)
    return run


def _calls(steps, free):
    return steps + 1


def check(options):
    number(options, "eps", 0, 1)
    number(options, "remask", 0, 1, closed=True)
    if not 0 <= options["remask_until"] < options["remask_from"] <= 1:
        raise ValueError("remasking needs 0 <= remask_until < remask_from <= 1, got "
                         f"{options['remask_until']} and {options['remask_from']}")


OPTIONS = {"eps": 1e-5, "remask": 0.0, "remask_from": 0.5, "remask_until": 0.1}  # eps: the grid's last time
ANALYTIC = Sampler("analytic", tau_leaping(analytic), "tau-leaping in the given number of steps (the official default)",
                   exact=True, absorbing_only=False, takes_steps=True, calls=_calls, options=OPTIONS, check=check)
EULER = Sampler("euler", tau_leaping(euler), "Euler tau-leaping; on the absorbing graph with log-linear noise it "
                "draws what analytic draws", exact=True, absorbing_only=False, takes_steps=True, calls=_calls,
                options=OPTIONS, check=check)
