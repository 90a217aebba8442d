"""Exact references on state spaces small enough to enumerate (every sequence of length L over N tokens)."""
import itertools

import torch

from sedd_core.graph import Absorbing, Uniform


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
