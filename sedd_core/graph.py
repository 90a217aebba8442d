"""Diffusion graphs: the rate matrix Q of the forward process dp_t/dt = sigma'(t) Q p_t.

Conventions: `i` is a long tensor of states (...,); `sigma` is broadcastable to `i`; methods that
return distributions over states give (..., dim). Column `Q[:, i]` holds the rates out of state i.
The dense methods (rate, transition, staggered_score, reverse_rate) are the definitions; the
samplers use their closed forms on the rows that can move (`predictors.py`, tested against these).
"""
import math

import torch
import torch.nn.functional as F


class Graph:
    """Base class. Subclasses define the rate matrix through rate/transp_rate/transition."""

    absorb = False
    dim: int

    def rate(self, i):  # (..., dim): Q[:, i]
        raise NotImplementedError

    def transp_rate(self, i):  # (..., dim): Q[i, :]
        raise NotImplementedError

    def transition(self, i, sigma):  # (..., dim): p(x_t = j | x_0 = i) = exp(sigma Q)[j, i]
        raise NotImplementedError

    def transp_transition(self, i, sigma):  # (..., dim): p(x_t = i | x_0 = j)
        raise NotImplementedError

    def rate_matrix(self) -> torch.Tensor:
        """The dense (dim, dim) rate matrix Q; for tests on small state spaces."""
        return self.rate(torch.arange(self.dim)).T.double()

    def reverse_rate(self, i, score):
        """Reverse rates out of state i given the concrete score s(i)_j ~ p(j)/p(i): (..., dim)."""
        rate = self.transp_rate(i) * score
        rate = rate.scatter(-1, i[..., None], 0.0)
        return rate.scatter(-1, i[..., None], -rate.sum(dim=-1, keepdim=True))


class Absorbing(Graph):
    """Every token jumps to the mask token (index `tokens`) at rate 1; the mask never leaves."""

    absorb = True

    def __init__(self, tokens: int):
        self.tokens = tokens
        self.dim = tokens + 1
        self.mask = tokens

    def rate(self, i):
        return F.one_hot(torch.full_like(i, self.mask), self.dim) - F.one_hot(i, self.dim)

    def transp_rate(self, i):
        edge = -F.one_hot(i, self.dim)
        return edge + (i == self.mask).long()[..., None]

    def transition(self, i, sigma):
        keep = torch.exp(-sigma)[..., None]
        return keep * F.one_hot(i, self.dim) + (1 - keep) * F.one_hot(torch.full_like(i, self.mask), self.dim)

    def transp_transition(self, i, sigma):
        keep = torch.exp(-sigma)[..., None]
        return keep * F.one_hot(i, self.dim) + (1 - keep) * (i == self.mask)[..., None]

    def sample_transition(self, i, sigma, generator=None):
        u = torch.rand(i.shape, generator=generator, device=i.device)
        return torch.where(u < -torch.expm1(-sigma), self.mask, i)

    def sample_limit(self, *shape, device="cpu", generator=None):
        return torch.full(shape, self.mask, dtype=torch.long, device=device)

    def staggered_score(self, score, dsigma):
        """exp(-dsigma Q)^T applied to the score: what the analytic (Tweedie) step needs."""
        dsigma = dsigma[..., None]
        extra = -torch.expm1(dsigma) * score.sum(dim=-1, keepdim=True)
        out = score * dsigma.exp()
        return torch.cat([out[..., :-1], out[..., -1:] + extra], dim=-1)

    def prior_kl(self, x0, sigma):
        """KL(p_sigma(. | x0) || p_sigma(. | uniform x0)) per position: exp(-sigma) log(tokens)."""
        return torch.exp(-sigma).expand(x0.shape) * math.log(self.tokens)

    def score_entropy(self, log_score, sigma, x, x0):
        """Denoising score entropy per position (...,), >= 0 and 0 at the true conditional ratio.
        `log_score` is (..., dim), or (N, dim): the rows of the masked slots only (`scored`)."""
        masked = x == self.mask
        out = torch.zeros(x.shape, dtype=log_score.dtype, device=x.device)
        if not masked.any():
            return out
        ratio = 1 / torch.expm1(sigma.expand(x.shape)[masked])  # p(x0_i | x0) / p(mask | x0)
        rows = log_score if log_score.dim() == 2 else log_score[masked]  # (N, dim)
        neg = ratio * rows.gather(-1, x0[masked][:, None]).squeeze(-1)
        pos = rows[:, :-1].exp().sum(dim=-1)
        const = ratio * (ratio.log() - 1)
        return out.masked_scatter(masked, (pos - neg + const).to(out.dtype))


class Uniform(Graph):
    """Every token jumps to every other token at rate 1/dim."""

    def __init__(self, tokens: int):
        self.tokens = self.dim = tokens

    def rate(self, i):
        edge = torch.full((*i.shape, self.dim), 1 / self.dim, device=i.device)
        return edge.scatter(-1, i[..., None], -(self.dim - 1) / self.dim)

    def transp_rate(self, i):
        return self.rate(i)

    def transition(self, i, sigma):
        move = -torch.expm1(-sigma)[..., None]
        return move / self.dim + (1 - move) * F.one_hot(i, self.dim)

    def transp_transition(self, i, sigma):
        return self.transition(i, sigma)

    def sample_transition(self, i, sigma, generator=None):
        u = torch.rand(i.shape, generator=generator, device=i.device)
        other = torch.randint(0, self.dim, i.shape, generator=generator, device=i.device)
        return torch.where(u < -torch.expm1(-sigma), other, i)

    def sample_limit(self, *shape, device="cpu", generator=None):
        return torch.randint(0, self.dim, shape, generator=generator, device=device)

    def staggered_score(self, score, dsigma):
        epow = torch.exp(-dsigma)[..., None]
        return (epow - 1) / (self.dim * epow) * score.sum(dim=-1, keepdim=True) + score / epow

    def prior_kl(self, x0, sigma):
        """KL(p_sigma(. | x0) || uniform) per position, in closed form."""
        move = -torch.expm1(-sigma).expand(x0.shape).double()
        stay = 1 - move + move / self.dim
        other = move / self.dim
        kl = stay * torch.log(stay * self.dim) + (self.dim - 1) * torch.xlogy(other, other * self.dim)
        return kl.float()

    def score_entropy(self, log_score, sigma, x, x0):
        """Denoising score entropy per position (...,), >= 0 and 0 at the true conditional ratio."""
        n = self.dim
        esigm1 = torch.expm1(sigma.expand(x.shape))
        ratio = 1 - n / (esigm1 + n)  # p(y | x0) / p(x0 | x0) for y != x0
        at_x = log_score.gather(-1, x[..., None]).squeeze(-1)
        neg = log_score.mean(dim=-1) - at_x / n
        neg = torch.where(x == x0, ratio * neg, log_score.gather(-1, x0[..., None]).squeeze(-1) / esigm1 + neg)
        const = torch.where(
            x == x0,
            (n - 1) / n * ratio * (ratio.log() - 1),
            ((-ratio.log() - 1) / ratio - (n - 2)) / n,
        )
        exp = log_score.exp()
        pos = exp.mean(dim=-1) - exp.gather(-1, x[..., None]).squeeze(-1) / n
        return pos - neg + const


def build_graph(kind: str, tokens: int) -> Graph:
    """'absorb' -> Absorbing, 'uniform' -> Uniform."""
    graphs = {"absorb": Absorbing, "uniform": Uniform}
    if kind not in graphs:
        raise ValueError(f"unknown graph type {kind!r}: expected one of {sorted(graphs)}")
    return graphs[kind](tokens)
