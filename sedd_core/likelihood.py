"""The ELBO: an upper bound on -log p(x), per position, by quadrature or Monte Carlo over t.

-log p(x0) <= int_0^sigma(1) E_{x_sigma ~ p_sigma(.|x0)} sum_i DSE_i dsigma + KL(p_1(.|x0) || prior),
with the prior p_1 of a uniformly random sequence. For the absorbing graph that prior is all-mask
but for a fraction exp(-sigma(1)) of slots (1e-3 for log-linear noise), so the KL term is tiny; the
sampler starts from all-mask. The integral starts at sigma = 0, where the noised data is the data:
when the schedule starts above 0 (geometric noise: sigma(0) = sigma_min), the piece from 0 to
sigma(0) is integrated too, or the result would not bound -log p(x0).
"""
from typing import Callable

import torch

from .graph import Graph
from .noise import Noise

METHODS = ("quadrature", "mc")


@torch.no_grad()
def elbo(
    score_fn: Callable,
    graph: Graph,
    noise: Noise,
    x0: torch.Tensor,
    points: int = 128,
    method: str = "quadrature",
    max_batch: int = 64,
    generator=None,
) -> torch.Tensor:
    """ELBO in nats per position (B, L); `.sum(-1)` bounds -log p(x0) of each sequence.

    `quadrature` is the midpoint rule in u = sqrt(t) with `points` nodes; `mc` draws t ~ U(0, 1). Each t
    gets one draw of x_t per sequence; up to `max_batch` rows go through `score_fn` at once.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}: expected one of {METHODS}")
    if points < 1:
        raise ValueError(f"points must be at least 1, got {points}")
    B, L = x0.shape
    device = x0.device
    if method == "quadrature":  # midpoints in u with t = u^2: denser near t = 0, where the integrand is steep
        u = (torch.arange(points, device=device, dtype=torch.float64) + 0.5) / points
        ts, weights = u**2, 2 * u / points
    else:
        ts = torch.rand(points, generator=generator, device=device, dtype=torch.float64)
        weights = torch.full_like(ts, 1 / points)
    sigmas, dsigma = noise(ts)
    weights = weights * dsigma  # nodes in sigma: int f(sigma) dsigma ~ sum_k weights_k f(sigmas_k)
    start = noise.total(torch.zeros((), device=device, dtype=torch.float64))
    if start > 0:  # [0, sigma(0)]: midpoints in v with sigma = sigma(0) v^2
        v = (torch.arange(max(1, points // 4), device=device, dtype=torch.float64) + 0.5) / max(1, points // 4)
        sigmas, weights = torch.cat([start * v**2, sigmas]), torch.cat([2 * start * v / len(v), weights])
    total = torch.zeros(B, L, dtype=torch.float64, device=device)
    group = max(1, max_batch // B)
    for sigma, w in zip(sigmas.split(group), weights.split(group)):
        sigma = sigma.repeat_interleave(B)  # (G*B,)
        x = x0.repeat(len(w), 1)  # (G*B, L)
        xt = graph.sample_transition(x, sigma[:, None].float(), generator)
        se = graph.score_entropy(score_fn(xt, sigma.float()), sigma[:, None], xt, x)  # (G*B, L), float64 sigma
        total += (w.repeat_interleave(B)[:, None] * se.double()).view(len(w), B, L).sum(0)
    sigma_1 = noise.total(torch.tensor(1.0, dtype=torch.float64))
    return (total + graph.prior_kl(x0, sigma_1.to(device)).double()).float()


def perplexity_bound(elbo_per_position: torch.Tensor) -> torch.Tensor:
    """exp(ELBO / L) per sequence (B,) from the per-position ELBO (B, L)."""
    return torch.exp(elbo_per_position.double().mean(dim=-1))


@torch.no_grad()
def conditional_elbo(score_fn: Callable, graph: Graph, noise: Noise, x0: torch.Tensor, free: torch.Tensor,
                     points: int = 64, max_batch: int = 64, generator=None):
    """ELBO of the free slots of x0 (B, L) given its other slots, in nats per sequence, by Monte Carlo
    over t ~ U(0, 1): (estimate (B,), standard error (B,)). Absorbing graph: the fixed slots are never
    masked, the clamped reverse process is exact, and this bounds -log p(x0[free] | x0[~free]).
    `free` (B, L) bool; with every slot free it estimates the same number as `elbo(...).sum(-1)`. For a
    schedule that starts above 0 (geometric noise) the piece from 0 to sigma(0) (O(sigma_min) nats per
    free slot) is left out, so it then estimates the bound rather than bounding."""
    if not graph.absorb:
        raise ValueError("the conditional ELBO needs the absorbing graph")
    if points < 2:
        raise ValueError(f"points must be at least 2 (for an error estimate), got {points}")
    B, L = x0.shape
    device = x0.device
    ts = torch.rand(points, generator=generator, device=device, dtype=torch.float64)
    sigmas, dsigma = noise(ts)
    draws = torch.zeros(points, B, dtype=torch.float64, device=device)  # one estimate of the integral per t
    group = max(1, max_batch // B)
    for k in range(0, points, group):
        sigma = sigmas[k:k + group].repeat_interleave(B)  # (G*B,)
        x = x0.repeat(len(sigma) // B, 1)
        xt = torch.where(free.repeat(len(sigma) // B, 1), graph.sample_transition(x, sigma[:, None].float(), generator), x)
        se = graph.score_entropy(score_fn(xt, sigma.float()), sigma[:, None], xt, x).double().sum(-1)  # (G*B,)
        draws[k:k + group] = (dsigma[k:k + group].repeat_interleave(B) * se).view(-1, B)
    sigma_1 = noise.total(torch.tensor(1.0, dtype=torch.float64))
    prior = (graph.prior_kl(x0, sigma_1.to(device)).double() * free).sum(-1)
    return draws.mean(0) + prior, draws.std(0) / points ** 0.5
