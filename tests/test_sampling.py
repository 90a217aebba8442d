"""Samplers driven by the exact score reproduce p0, and p0(. | fixed tokens) when tokens are fixed."""
import pytest
import torch

from exact import ExactProblem
from sedd_core.noise import LogLinear
from sedd_core.sampling import sample, sample_iter

CASES = [(g, p) for g in ("absorb", "uniform") for p in ("analytic", "euler")]


@pytest.mark.parametrize("graph_type,predictor", CASES)
def test_exact_score_reproduces_p0(graph_type, predictor):
    P = ExactProblem(graph_type)
    g = torch.Generator().manual_seed(0)
    out = sample(P.log_score, P.graph, LogLinear(), 40_000, 3, steps=64, predictor=predictor, generator=g)
    assert P.empirical_tv(out, P.p0) < 0.03


@pytest.mark.parametrize("graph_type,predictor", CASES)
def test_exact_score_reproduces_conditional_with_fixed_tokens(graph_type, predictor):
    """Fix the middle token in half the rows and the last in the other half: per-row conditions.

    Absorbing: a clean token at time t says exactly what x0 holds there, so clamping fixed slots and
    using the marginal score samples p0(. | fixed) exactly. Uniform: a clean token at time t is only
    weak evidence, so clamping with the marginal score is an approximation (as in the reference code);
    there the oracle is the exact score of the conditional, which checks the sampler's mechanics.
    """
    P = ExactProblem(graph_type, seed=3)
    n = 20_000
    fixed = torch.zeros(2 * n, 3, dtype=torch.bool)
    fixed[:n, 1] = True
    fixed[n:, 2] = True
    ids = torch.zeros(2 * n, 3, dtype=torch.long)
    ids[:n, 1] = 2
    ids[n:, 2] = 0
    cond_mid, cond_last = ExactProblem(graph_type, seed=3), ExactProblem(graph_type, seed=3)
    cond_mid.p0 = torch.zeros_like(P.p0)
    cond_mid.p0[:, 2, :] = P.p0[:, 2, :] / P.p0[:, 2, :].sum()
    cond_last.p0 = torch.zeros_like(P.p0)
    cond_last.p0[..., 0] = P.p0[..., 0] / P.p0[..., 0].sum()

    def score_fn(x, sigma):
        if graph_type == "absorb":
            return P.log_score(x, sigma)
        return torch.cat([cond_mid.log_score(x[:n], sigma[:n]), cond_last.log_score(x[n:], sigma[n:])])

    g = torch.Generator().manual_seed(1)
    out = sample(score_fn, P.graph, LogLinear(), 2 * n, 3, steps=64, predictor=predictor,
                 fixed_ids=ids, fixed_mask=fixed, generator=g)
    assert (out[:n, 1] == 2).all() and (out[n:, 2] == 0).all()
    assert P.empirical_tv(out[:n], cond_mid.p0) < 0.03
    assert P.empirical_tv(out[n:], cond_last.p0) < 0.03


@pytest.mark.parametrize("graph_type", ["absorb", "uniform"])
def test_streaming_equals_sample_and_fixed_tokens_never_move(graph_type):
    P = ExactProblem(graph_type)
    fixed = torch.tensor([[True, False, False], [False, False, True]])
    ids = torch.tensor([[1, 0, 0], [0, 0, 2]])
    kwargs = dict(batch=2, length=3, steps=10, fixed_ids=ids, fixed_mask=fixed)
    states = list(sample_iter(P.log_score, P.graph, LogLinear(), generator=torch.Generator().manual_seed(5), **kwargs))
    drained = sample(P.log_score, P.graph, LogLinear(), generator=torch.Generator().manual_seed(5), **kwargs)
    assert [s.step for s in states] == list(range(12)) and states[-1].done and not states[-2].done
    assert torch.equal(states[-1].tokens, drained)
    for prev, s in zip(states, states[1:]):
        assert torch.equal(s.tokens[fixed], ids[fixed])
        assert torch.equal(s.changed, s.tokens != prev.tokens)
    if graph_type == "absorb":
        assert (states[0].tokens[~fixed] == P.graph.mask).all() and (drained < 3).all()


def test_sampler_errors():
    P = ExactProblem("absorb")
    with pytest.raises(ValueError, match="unknown predictor"):
        sample(P.log_score, P.graph, LogLinear(), 1, 3, predictor="heun")
    with pytest.raises(ValueError, match="steps must be"):
        sample(P.log_score, P.graph, LogLinear(), 1, 3, steps=0)
    with pytest.raises(ValueError, match="fixed_mask has shape"):
        sample(P.log_score, P.graph, LogLinear(), 1, 3, fixed_mask=torch.ones(1, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="fixed token ids"):
        sample(P.log_score, P.graph, LogLinear(), 1, 3, fixed_mask=torch.ones(1, 3, dtype=torch.bool),
               fixed_ids=torch.full((1, 3), 3))
