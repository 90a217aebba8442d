"""First hitting ("first_hitting", absorbing graph): the reverse process simulated exactly, one decided
slot per call and row. Given k masked free slots at time t, each one is still masked at s < t with
probability rho(s) / rho(t), rho = 1 - exp(-sigma), independently; so the next unmasking happens at
rho(s) = rho(t) u^(1/k) (for log-linear noise, s = t u^(1/k)), at a slot chosen uniformly among the k,
and its token is drawn from the model's conditional at s (the score row without the mask,
normalised). One call per free slot, no step count and no discretisation error; each batch row keeps
its own clock. `per_call = n > 1` decides n slots per call from one network output (the first
event's); faster, and approximate: the later tokens of a call do not see the earlier ones.
"""
import torch

from .base import Sampler, number


def first_hitting(ctx, x, t_start, steps, eps=1e-5, per_call=1):
    B, L = x.shape
    dev, f64, noise = x.device, torch.float64, ctx.noise
    now = ctx.open(x)
    left = now.sum(1)  # (B,) masked free slots per row
    per_call = min(per_call, L)
    last = int((left.max() + per_call - 1) // per_call)
    t = torch.full((B,), t_start, dtype=f64, device=dev)
    rho = -torch.expm1(-noise.total(t))  # (B,) P(masked) at t
    floor = noise.total(torch.tensor(eps, dtype=f64, device=dev))  # the network is never asked below sigma(eps)
    yield ctx.state(0, last, t, x, torch.zeros_like(now), now)
    for n in range(last):
        events = left.clamp(max=per_call)  # (B,) slots decided in this call
        u = torch.rand(B, per_call, generator=ctx.generator, dtype=f64, device=dev)
        k = (left[:, None] - torch.arange(per_call, device=dev)).clamp(min=1)  # masked slots before each event
        fall = torch.where(torch.arange(per_call, device=dev) < events[:, None], u ** (1 / k), 1.0)
        rhos = rho[:, None] * fall.cumprod(1)  # (B, per_call): rho at each event
        sigma = torch.maximum(-torch.log1p(-rhos[:, 0]), floor)  # (B,) at the first event
        keys = torch.rand(B, L, generator=ctx.generator, dtype=f64, device=dev).masked_fill_(~now, -1)
        order = keys.argsort(1, descending=True)[:, :per_call]  # (B, per_call) a uniform choice of open slots
        pick = torch.zeros_like(now).scatter_(1, order, torch.arange(per_call, device=dev) < events[:, None])
        w, _ = ctx.scorer(x, sigma, pick)
        x = x.masked_scatter(pick, ctx.drawer(pick)(w[:, :ctx.graph.tokens], slice(None)))
        active = events > 0
        rho = torch.where(active, rhos.gather(1, (events - 1).clamp(min=0)[:, None]).squeeze(1), rho)
        t = torch.where(active, noise.inverse(-torch.log1p(-rho)).clamp(0, 1), t)
        left, now = left - events, now & ~pick
        yield ctx.state(n + 1, last, t, x, pick, now)


def check(options):
    number(options, "eps", 0, 1)
    if isinstance(options["per_call"], bool) or not isinstance(options["per_call"], int) or options["per_call"] < 1:
        raise ValueError(f"per_call must be at least 1, got {options['per_call']!r}")


FIRST_HITTING = Sampler("first_hitting", first_hitting, "exact, one network call per free slot, no steps",
                        exact=True, absorbing_only=True, takes_steps=False, calls=lambda steps, free: free,
                        options={"eps": 1e-5, "per_call": 1}, check=check)
