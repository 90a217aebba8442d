"""Exact references on state spaces small enough to enumerate (every sequence of length L over N tokens)."""
import itertools

import torch

from sedd_core.graph import Absorbing, Uniform


class TimeFree:
    """An exact absorbing-graph score marked time-independent (log-score = f(x) - log(e^sigma - 1)),
    so the samplers may reuse its output while a row's tokens do not change. Counts rows scored."""

    time_independent = True

    def __init__(self, score_fn):
        self.score_fn, self.rows = score_fn, 0

    def __call__(self, x, sigma):
        self.rows += len(x)
        return self.score_fn(x, sigma)


class Independent:
    """p0 = a product of per-slot categoricals over `tokens` (absorbing graph), any length; its exact
    log-score at a masked slot is log p_i(v) - log(e^sigma - 1), at other slots it is not needed."""

    def __init__(self, tokens, length, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.graph, self.length = Absorbing(tokens), length
        self.logp = torch.log_softmax(torch.randn(length, tokens, generator=g, dtype=torch.float64), -1)

    def __call__(self, x, sigma):  # (B, L), (B,) -> (B, L, tokens + 1)
        out = self.logp[None] - torch.log(torch.expm1(sigma.double()))[:, None, None]
        out = torch.cat([out, torch.zeros(*out.shape[:2], 1, dtype=out.dtype)], -1)
        return out.float().scatter(-1, x[..., None], 0.0)


class ExactProblem:
    """A random data distribution p0 over all N^L sequences and its exact concrete score."""

    def __init__(self, graph_type="absorb", tokens=3, length=3, seed=0):
        self.graph = Absorbing(tokens) if graph_type == "absorb" else Uniform(tokens)
        self.tokens, self.length = tokens, length
        g = torch.Generator().manual_seed(seed)
        logits = 1.5 * torch.randn(tokens**length, generator=g, dtype=torch.float64)
        self.p0 = torch.softmax(logits, 0).view((tokens,) * length)  # (N,)*L
        self.sequences = torch.tensor(list(itertools.product(range(tokens), repeat=length)))  # (N^L, L)

    def marginal(self, sigma: torch.Tensor) -> torch.Tensor:
        """p_sigma over all dim^L states, one row per sigma: (B, dim, ..., dim)."""
        d = self.graph.dim
        T = self.graph.transition(torch.arange(self.tokens), sigma.double()[:, None])  # (B, N, dim)
        p = self.p0[None].expand(len(sigma), *self.p0.shape)
        for i in range(self.length):  # contract x0_i into x_i, one axis at a time
            p = torch.einsum("b...n,bnd->b...d", p.movedim(1, -1), T.view(len(sigma), self.tokens, d))
        return p

    def log_score(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """Exact log p_sigma(x with x_i = v) / p_sigma(x): (B, L, dim); -1e4 where the ratio is 0."""
        d, L = self.graph.dim, self.length
        p = self.marginal(sigma.reshape(-1).expand(len(x))).reshape(len(x), -1)  # (B, dim^L)
        place = d ** torch.arange(L - 1, -1, -1)  # (L,)
        idx = (x * place).sum(-1)  # (B,)
        v = torch.arange(d)
        other = idx[:, None, None] + (v[None, None] - x[..., None]) * place[None, :, None]  # (B, L, dim)
        ratio = p.gather(1, other.view(len(x), -1)).view(len(x), L, d) / p.gather(1, idx[:, None])[..., None]
        return torch.where(ratio > 0, ratio.clamp_min(1e-300).log(), torch.tensor(-1e4, dtype=ratio.dtype)).float()

    def nll(self, x0: torch.Tensor) -> torch.Tensor:
        """Exact -log p0(x0) per sequence (B,)."""
        return -self.p0[tuple(x0.T)].log()

    def empirical_tv(self, samples: torch.Tensor, target: torch.Tensor) -> float:
        """Total variation between the histogram of `samples` (S, L) and `target` (N,)*L."""
        place = self.tokens ** torch.arange(self.length - 1, -1, -1)
        counts = torch.bincount((samples * place).sum(-1), minlength=self.tokens**self.length).double()
        return 0.5 * (counts / counts.sum() - target.reshape(-1)).abs().sum().item()

    def p_value(self, samples: torch.Tensor, target: torch.Tensor) -> float:
        """Pearson's chi-square test of the histogram of `samples` (S, L) against `target` (N,)*L."""
        place = self.tokens ** torch.arange(self.length - 1, -1, -1)
        counts = torch.bincount((samples * place).sum(-1), minlength=self.tokens**self.length).double()
        expected = len(samples) * target.reshape(-1).double()
        cells = expected > 0
        if counts[~cells].any():  # a sequence of probability 0 was drawn
            return 0.0
        stat = ((counts[cells] - expected[cells]) ** 2 / expected[cells]).sum()
        df = torch.tensor((int(cells.sum()) - 1) / 2, dtype=torch.float64)
        return torch.special.gammaincc(df, stat / 2).item()

    def elbo(self, noise, points):
        """The ELBO with E_{x_t | x0} by enumerating every x_t, midpoint rule in u = sqrt(t): (N^L,)."""
        d, L = self.graph.dim, self.length
        states = torch.cartesian_prod(*[torch.arange(d)] * L)  # (d^L, L)
        x0 = self.sequences.repeat_interleave(len(states), 0)  # (N^L * d^L, L)
        xt = states.repeat(len(self.sequences), 1)
        total = torch.zeros(len(self.sequences), dtype=torch.float64)
        for u in (torch.arange(points, dtype=torch.float64) + 0.5) / points:
            t = u**2
            sigma, dsigma = noise(t)
            dsigma = dsigma * 2 * u  # dt = 2u du
            weight = self.graph.transition(x0, sigma).gather(-1, xt[..., None]).squeeze(-1).prod(-1)  # p(x_t | x0)
            keep = weight > 0
            se = torch.zeros(len(x0), dtype=torch.float64)
            ls = self.log_score(xt[keep], sigma.float().expand(int(keep.sum()))).double()
            se[keep] = self.graph.score_entropy(ls, sigma, xt[keep], x0[keep]).sum(-1)
            total += dsigma * (weight * se).view(len(self.sequences), -1).sum(-1) / points
        prior = self.graph.prior_kl(self.sequences, noise.total(torch.tensor(1.0, dtype=torch.float64))).double().sum(-1)
        return total + prior


if __name__ == "__main__":  # the figures quoted in notes: PYTHONPATH=. python tests/exact.py
    from sedd_core.noise import LogLinear
    from sedd_core.samplers import Settings, sample

    for graph_type in ("absorb", "uniform"):
        P = ExactProblem(graph_type)
        for predictor in ("analytic", "euler"):
            out = sample(P.log_score, P.graph, LogLinear(), (40_000, 3), Settings(predictor, 64),
                         generator=torch.Generator().manual_seed(0))
            print(f"{graph_type} {predictor}: TV(samples, p0) = {P.empirical_tv(out, P.p0):.4f}")
        p0 = P.p0.reshape(-1)
        entropy, bound = (p0 * P.nll(P.sequences)).sum().item(), (p0 * P.elbo(LogLinear(), 400)).sum().item()
        print(f"{graph_type}: entropy {entropy:.5f} nats, E[ELBO] {bound:.5f} nats, gap {100 * (bound - entropy) / entropy:.4f}%")
