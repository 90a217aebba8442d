"""The lean predictor steps draw from the same distribution as the dense definitions in graph.py."""
import pytest
import torch
import torch.nn.functional as F

from sedd_core.draw import categorical
from sedd_core.graph import Absorbing, Uniform
from sedd_core.noise import LogLinear
from sedd_core.samplers.steps import analytic, denoise, euler

N = 200_000


def exact(generator):
    """The exact token draw the sampler passes to the absorbing steps."""
    return lambda w, which, sums=None: categorical(w, generator, sums)
T, S = torch.tensor(0.6, dtype=torch.float64), torch.tensor(0.45, dtype=torch.float64)


def dense(graph, kind, x, score, noise):
    """The reference step of the official sampler, written with the dense graph methods: (dim,)."""
    if kind == "euler":
        h = noise.rate(T) * (T - S)
        probs = F.one_hot(x, graph.dim).double() + h * graph.reverse_rate(x, score)
    else:
        d = noise.total(T) - noise.total(S) if kind == "analytic" else noise.total(T)
        probs = graph.staggered_score(score[None], d[None])[0] * graph.transp_transition(x, d)
        if kind == "denoise" and graph.absorb:
            probs = probs[:-1]
    probs = probs.clamp_min(0)
    return probs / probs.sum()


@pytest.mark.parametrize("kind, step", [("analytic", analytic), ("euler", euler), ("denoise", denoise)])
@pytest.mark.parametrize("graph", [Absorbing(4), Uniform(5)], ids=["absorb", "uniform"])
def test_step_frequencies_equal_the_dense_step(graph, kind, step):
    g = torch.Generator().manual_seed(0)
    x = torch.tensor(graph.mask if graph.absorb else 2)
    score = torch.rand(graph.dim, generator=g, dtype=torch.float64) * 2 + 0.1
    score[x] = 1.0  # the diagonal of a concrete score is p(x)/p(x)
    noise = LogLinear()
    expected = dense(graph, kind, x, score, noise)
    w = score.float().expand(N, -1)
    got = step(graph, x.expand(N), w, torch.ones(N, dtype=torch.float64), noise, T, S, exact(g), g)
    freq = torch.bincount(got, minlength=graph.dim).double() / N
    assert torch.allclose(freq[:len(expected)], expected, atol=4e-3), (freq, expected)
    assert freq[len(expected):].sum() == 0  # the final step never leaves a mask


def test_scale_is_the_same_as_scaled_scores():
    """A row reused from a time-independent model arrives as (w, scale): the step sees w * scale."""
    graph, noise = Absorbing(6), LogLinear()
    w = torch.rand(1000, graph.dim) / 16
    w[:, -1] = 1
    ga, gb = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    a = analytic(graph, graph.mask, w * 4, torch.ones(1000, dtype=torch.float64), noise, T, S, exact(ga), ga)
    b = analytic(graph, graph.mask, w, torch.full((1000,), 4.0, dtype=torch.float64), noise, T, S, exact(gb), gb)
    assert torch.equal(a, b) and (a == graph.mask).any() and (a != graph.mask).any()
