"""Tau-leaping's steps (the loop is tau_leaping.py): from the scores of the slots that can move to their new tokens.

A step is a plain function `(graph, x, w, scale, noise, t, s, draw, generator) -> tokens (N,)` that
moves the N rows that can change from time t to time s < t: `x` (N,) are their tokens, `w` (N, V)
float32 their exp-scores exp(log s(x)) (read only: the sampler may reuse it), `scale` (N,) float64 a
factor every score of a row must be multiplied by (1, except for rows the sampler reused from a
time-independent model), t, s float64 tensors broadcastable to (N,), and `draw(w_rows, which, sums)`
the token draw of the absorbing graph (exact, or shaped by `controls.Controls`) for rows `which`.
`denoise` is the final step from t = eps to 0; the loop never chooses a step by a flag.

Absorbing graph: every row that can move is a mask, and its diagonal score is 1 by definition
(p(x)/p(x)), so each step is "leave the mask with probability min(1, f * sum_j s_j), then draw the
token in proportion to s_j", with f = e^dsigma - 1 (analytic) or sigma'(t)(t - s) (Euler). That is
the dense step exp(-dsigma Q)^T s * exp(dsigma Q)[x, :] (resp. one_hot(x) + dt R(x)) in closed form:
a (V,) transition, never an (N, V) float64 product. Uniform graph: the same products, computed in
place in one (N, V) float64 buffer. The draw itself is `draw.categorical` (float64, exact).
"""
import torch

from ..draw import block_sums, categorical


def unmask(graph, w, scale, f, draw, generator) -> torch.Tensor:
    """Absorbing graph: leave the mask with probability min(1, f * sum_j s_j) (always if f is None),
    then draw the token in proportion to s_j: (N,), the mask id where a row stays masked."""
    tokens = w[:, :graph.tokens]  # (N, tokens): the mask column is the diagonal
    sums = block_sums(tokens)  # (N, blocks) float64
    if f is None:
        go = torch.ones(len(w), dtype=torch.bool, device=w.device)
    else:
        leave = (f * scale * sums.sum(1)).clamp_(max=1)  # (N,)
        go = torch.rand(leave.shape, generator=generator, dtype=torch.float64, device=w.device) < leave
    out = torch.full_like(go, graph.mask, dtype=torch.long)
    if go.any():
        out[go] = draw(tokens[go], go, sums[go])
    return out


def _uniform_analytic(graph, x, w, dsigma, generator) -> torch.Tensor:
    """Uniform graph: weights exp(-dsigma Q)^T s * exp(dsigma Q)[x, :], in place in float64."""
    p = w.double()  # (N, V): the one float64 buffer
    dsigma = dsigma.reshape(-1, 1)
    total = p.sum(1, keepdim=True)
    p.mul_(dsigma.exp()).sub_(torch.expm1(dsigma) * total / graph.dim)  # staggered score
    move = -torch.expm1(-dsigma) / graph.dim  # (N, 1): p(x_t = x | x_s = j != x)
    at_x = p.gather(1, x[:, None]) * (move + torch.exp(-dsigma))  # the diagonal: move + (1 - dim * move)
    p.mul_(move).scatter_(1, x[:, None], at_x)
    return categorical(p.clamp_min_(0), generator)


def analytic(graph, x, w, scale, noise, t, s, draw, generator) -> torch.Tensor:
    """Tweedie tau-leaping (the official default): exact in time for each slot given the score at t."""
    dsigma = noise.total(t) - noise.total(s)
    if graph.absorb:
        return unmask(graph, w, scale, torch.expm1(dsigma), draw, generator)
    return _uniform_analytic(graph, x, w, dsigma.expand(len(x)), generator)


def euler(graph, x, w, scale, noise, t, s, draw, generator) -> torch.Tensor:
    """Euler tau-leaping: one_hot(x) + (t - s) sigma'(t) R(x), with R the reverse rates out of x."""
    h = noise.rate(t) * (t - s)
    if graph.absorb:
        return unmask(graph, w, scale, h, draw, generator)
    p = w.double().mul_(h / graph.dim)  # (N, V): rates to every j != x are s_j / dim
    at_x = 1 - (p.sum(1) - p.gather(1, x[:, None]).squeeze(1))  # stay: 1 - the total rate out
    return categorical(p.scatter_(1, x[:, None], at_x[:, None]).clamp_min_(0), generator)


def denoise(graph, x, w, scale, noise, t, s, draw, generator) -> torch.Tensor:
    """The final step from t = eps: the analytic step with dsigma = sigma(t); no mask is left."""
    if graph.absorb:
        return unmask(graph, w, scale, None, draw, generator)
    return _uniform_analytic(graph, x, w, noise.total(t).expand(len(x)), generator)

