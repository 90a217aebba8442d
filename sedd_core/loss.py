"""Denoising score entropy: the SEDD training loss, one pure function."""
from typing import Callable, Optional

import torch

from .graph import Graph
from .noise import Noise


def sample_times(batch: int, eps: float = 1e-3, stratified: bool = False, generator=None, device="cpu"):
    """t ~ U(eps, 1) per row; `stratified` puts one t in each of `batch` equal strata (same mean, less variance)."""
    if stratified:
        u = (torch.arange(batch, device=device) + torch.rand(1, generator=generator, device=device)) / batch
    else:
        u = torch.rand(batch, generator=generator, device=device)
    return eps + (1 - eps) * u


def score_entropy_loss(
    score_fn: Callable,
    graph: Graph,
    noise: Noise,
    x0: torch.Tensor,
    t: Optional[torch.Tensor] = None,
    eps: float = 1e-3,
    stratified: bool = False,
    generator=None,
) -> torch.Tensor:
    """Per-sequence loss (B,): sigma'(t) * sum_i DSE_i(x_t, x0), with x_t ~ p_t(. | x0).

    `score_fn(x, sigma) -> log-scores (B, L, dim)`; `t` (B,) overrides the draw of times. For the
    absorbing graph only masked slots carry a loss, so a `score_fn` that `selects_rows` (the DDiT)
    runs its output head on those rows alone: the same value, with less work.
    """
    if t is None:
        t = sample_times(x0.shape[0], eps, stratified, generator, x0.device)
    sigma, dsigma = noise(t)  # (B,), (B,)
    xt = graph.sample_transition(x0, sigma[:, None], generator)  # (B, L)
    if graph.absorb and getattr(score_fn, "selects_rows", False):
        log_score = score_fn(xt, sigma, rows=xt == graph.mask)  # (N, dim) at the masked slots
    else:
        log_score = score_fn(xt, sigma)  # (B, L, dim)
    entropy = graph.score_entropy(log_score, sigma[:, None], xt, x0)  # (B, L)
    return dsigma * entropy.sum(dim=-1)
