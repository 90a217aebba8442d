"""Reverse-diffusion samplers that stream every intermediate state.

`sample_iter` is a generator: it yields a `SampleState` after the start, after each predictor step
on the time grid linspace(1, eps, steps + 1), and after the final denoising step. `sample` drains it.
`score_fn(x, sigma) -> log-scores (B, L, dim)` may be the network or any exact oracle.
"""
from dataclasses import dataclass
from typing import Callable, Iterator, Optional

import torch
import torch.nn.functional as F

from .graph import Graph, sample_categorical
from .noise import Noise

PREDICTORS = ("analytic", "euler")


@dataclass
class SampleState:
    step: int  # 0 = the start, steps + 1 = after the final denoising step
    steps: int  # number of predictor steps
    t: float  # diffusion time of `tokens`
    tokens: torch.Tensor  # (B, L) long; the mask id (graph.mask) marks undecided slots
    changed: torch.Tensor  # (B, L) bool: positions whose token changed in this step
    done: bool


@torch.no_grad()
def sample_iter(
    score_fn: Callable,
    graph: Graph,
    noise: Noise,
    batch: int,
    length: int,
    steps: int = 128,
    predictor: str = "analytic",
    fixed_ids: Optional[torch.Tensor] = None,
    fixed_mask: Optional[torch.Tensor] = None,
    eps: float = 1e-5,
    denoise: bool = True,
    generator: Optional[torch.Generator] = None,
    device="cpu",
) -> Iterator[SampleState]:
    """Yield the state at every step. Tokens where `fixed_mask` (B, L) is set hold `fixed_ids` (B, L)."""
    if predictor not in PREDICTORS:
        raise ValueError(f"unknown predictor {predictor!r}: expected one of {PREDICTORS}")
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    fixed = torch.zeros(batch, length, dtype=torch.bool, device=device) if fixed_mask is None else fixed_mask.to(device)
    if fixed.shape != (batch, length):
        raise ValueError(f"fixed_mask has shape {tuple(fixed.shape)}, expected {(batch, length)}")
    ids = torch.zeros_like(fixed, dtype=torch.long) if fixed_ids is None else fixed_ids.to(device).long()
    if fixed.any() and (ids[fixed].min() < 0 or ids[fixed].max() >= graph.tokens):
        raise ValueError(f"fixed token ids must lie in [0, {graph.tokens})")

    x = torch.where(fixed, ids, graph.sample_limit(batch, length, device=device, generator=generator))
    times = torch.linspace(1, eps, steps + 1, device=device, dtype=torch.float64)
    yield SampleState(0, steps, 1.0, x.clone(), torch.zeros_like(fixed), False)

    for n in range(steps + denoise):
        last = n == steps  # the final denoising step from t = eps to 0
        t = times[min(n, steps)]
        sigma = noise.total(t)
        dsigma = sigma if last else sigma - noise.total(times[n + 1])
        if predictor == "euler" and not last:
            dsigma = noise.rate(t) * (times[n] - times[n + 1])
        rows = ~fixed & (x == graph.mask) if graph.absorb else ~fixed  # (B, L): positions that may move
        new = x.clone()
        if rows.any():  # only rows that may move are scored in float64: (N, dim), not (B, L, dim)
            score = score_fn(x, sigma.float().expand(batch))[rows].double().exp()  # (N, dim)
            xr, ds = x[rows], dsigma.expand(len(score))
            if predictor == "euler" and not last:
                probs = F.one_hot(xr, graph.dim) + ds[:, None] * graph.reverse_rate(xr, score)
            else:  # analytic (Tweedie) step; also the final denoising step for both predictors
                probs = graph.staggered_score(score, ds) * graph.transp_transition(xr, ds)
            if last and graph.absorb:  # never leave a mask at t = 0
                probs = probs[:, :-1]
            new[rows] = sample_categorical(probs, generator)
        changed = new != x
        x = new
        yield SampleState(n + 1, steps, 0.0 if last else float(times[n + 1]), x.clone(), changed, n + 1 == steps + denoise)


def sample(*args, **kwargs) -> torch.Tensor:
    """Drain `sample_iter` and return the final tokens (B, L)."""
    state = None
    for state in sample_iter(*args, **kwargs):
        pass
    return state.tokens
