"""Graphs against exact references: matrix exponentials and the score-entropy minimiser."""
import pytest
import torch

from exact import ExactProblem
from sedd_core.graph import Absorbing, Uniform, build_graph

GRAPHS = [Absorbing(4), Uniform(4)]


@pytest.mark.parametrize("graph", GRAPHS, ids=["absorb", "uniform"])
def test_transition_is_matrix_exponential(graph):
    Q = graph.rate_matrix()
    assert torch.allclose(Q.sum(0), torch.zeros(graph.dim, dtype=Q.dtype))  # columns conserve mass
    states = torch.arange(graph.dim)
    for sigma in (0.05, 0.7, 3.0):
        expm = torch.linalg.matrix_exp(sigma * Q)  # expm[j, i] = p(j | i)
        s = torch.full((graph.dim,), sigma, dtype=torch.float64)
        assert torch.allclose(graph.transition(states, s), expm.T, atol=1e-12)
        assert torch.allclose(graph.transp_transition(states, s), expm, atol=1e-12)
    assert torch.allclose(graph.transp_rate(states).double(), Q)


@pytest.mark.parametrize("graph", GRAPHS, ids=["absorb", "uniform"])
def test_sample_transition_matches_probabilities(graph):
    g = torch.Generator().manual_seed(0)
    x0 = torch.full((200_000,), 1)
    xt = graph.sample_transition(x0, torch.tensor(0.8), g)
    freq = torch.bincount(xt, minlength=graph.dim).double() / len(xt)
    assert torch.allclose(freq, graph.transition(torch.tensor(1), torch.tensor(0.8, dtype=torch.float64)), atol=4e-3)


@pytest.mark.parametrize("graph", GRAPHS, ids=["absorb", "uniform"])
def test_staggered_score_is_transposed_exponential(graph):
    """staggered_score(s, d) = exp(-d Q) s, row by row (what Tweedie tau-leaping uses)."""
    score = torch.rand(5, graph.dim, dtype=torch.float64) + 0.1
    d = torch.full((5,), 0.3, dtype=torch.float64)
    expected = score @ torch.linalg.matrix_exp(-0.3 * graph.rate_matrix()).T
    assert torch.allclose(graph.staggered_score(score, d), expected, atol=1e-12)


@pytest.mark.parametrize("graph_type", ["absorb", "uniform"])
def test_score_entropy_zero_at_conditional_ratio_and_positive_elsewhere(graph_type):
    graph = build_graph(graph_type, 4)
    g = torch.Generator().manual_seed(0)
    x0 = torch.randint(0, 4, (64, 3), generator=g)
    sigma = torch.rand(64, 1, generator=g, dtype=torch.float64) * 2 + 0.05
    xt = graph.sample_transition(x0, sigma, g)
    p = graph.transition(x0, sigma)  # (B, L, dim) = p(y | x0) per position
    true = (p / p.gather(-1, xt[..., None])).clamp_min(1e-300).log().clamp_min(-1e4)
    at_true = graph.score_entropy(true, sigma, xt, x0)
    assert at_true.abs().max() < 1e-9
    other = graph.score_entropy(true + torch.randn(true.shape, generator=g, dtype=torch.float64), sigma, xt, x0)
    assert other.min() >= -1e-9 and other.sum() > 1


@pytest.mark.parametrize("graph_type", ["absorb", "uniform"])
def test_exact_score_minimises_expected_score_entropy(graph_type):
    """E_{x0 | x_t}[DSE(s)] is minimised by the exact marginal score, among perturbations of it."""
    P = ExactProblem(graph_type, tokens=3, length=2)
    sigma = torch.tensor(0.6, dtype=torch.float64)
    pt = P.marginal(sigma[None])[0].reshape(-1)  # (dim^L,)
    d = P.graph.dim
    states = torch.tensor([[a, b] for a in range(d) for b in range(d)])
    x0s = P.sequences
    joint = torch.stack([P.graph.transition(x0s, sigma)[:, 0, s[0]] * P.graph.transition(x0s, sigma)[:, 1, s[1]] for s in states], 1)
    joint = joint * P.p0.reshape(-1)[:, None]  # (N^L, dim^L) = p(x0, x_t)
    exact = P.log_score(states, sigma.float().expand(len(states))).double()

    def expected(log_score):
        total = 0.0
        for k, x in enumerate(states):
            if pt[k] == 0:
                continue
            se = P.graph.score_entropy(log_score[k].expand(len(x0s), -1, -1), sigma, x.expand(len(x0s), -1), x0s)
            total += (joint[:, k] * se.sum(-1)).sum()
        return total

    best = expected(exact)
    g = torch.Generator().manual_seed(1)
    for _ in range(5):
        assert expected(exact + 0.1 * torch.randn(exact.shape, generator=g, dtype=torch.float64)) > best


def test_unknown_graph_is_named():
    with pytest.raises(ValueError, match="unknown graph type"):
        build_graph("banana", 4)
