"""Samplers driven by the exact score reproduce p0, and p0(. | fixed tokens) when tokens are fixed."""
import pytest
import torch

from exact import ExactProblem, Independent, TimeFree
from sedd_core.noise import Geometric, LogLinear
from sedd_core.samplers import Fixed, Settings, Start, sample, sample_iter

FIRST = Settings("first_hitting")

CASES = [(g, p) for g in ("absorb", "uniform") for p in ("analytic", "euler")]


@pytest.mark.parametrize("graph_type,predictor", CASES)
def test_exact_score_reproduces_p0(graph_type, predictor):
    P = ExactProblem(graph_type)
    g = torch.Generator().manual_seed(0)
    out = sample(P.log_score, P.graph, LogLinear(), (40_000, 3), Settings(predictor, 64), generator=g)
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
    out = sample(score_fn, P.graph, LogLinear(), (2 * n, 3), Settings(predictor, 64), Fixed(ids, fixed), generator=g)
    assert (out[:n, 1] == 2).all() and (out[n:, 2] == 0).all()
    assert P.empirical_tv(out[:n], cond_mid.p0) < 0.03
    assert P.empirical_tv(out[n:], cond_last.p0) < 0.03


@pytest.mark.parametrize("graph_type", ["absorb", "uniform"])
def test_streaming_equals_sample_and_fixed_tokens_never_move(graph_type):
    P = ExactProblem(graph_type)
    fixed = torch.tensor([[True, False, False], [False, False, True]])
    ids = torch.tensor([[1, 0, 0], [0, 0, 2]])
    args = ((2, 3), Settings(steps=10), Fixed(ids, fixed))
    states = list(sample_iter(P.log_score, P.graph, LogLinear(), *args, generator=torch.Generator().manual_seed(5)))
    drained = sample(P.log_score, P.graph, LogLinear(), *args, generator=torch.Generator().manual_seed(5))
    assert [s.step for s in states] == list(range(12)) and states[-1].done and not states[-2].done
    assert torch.equal(states[-1].tokens, drained)
    for prev, s in zip(states, states[1:]):
        assert torch.equal(s.tokens[fixed], ids[fixed])
        assert torch.equal(s.changed, s.tokens != prev.tokens)
    if graph_type == "absorb":
        assert (states[0].tokens[~fixed] == P.graph.mask).all() and (drained < 3).all()


def conditioned(P, n):
    """Fixed ids and mask for 2n rows: the middle slot fixed to 2 in the first n, the last to 0 in the
    others; and the two exact conditionals p0(. | fixed) they should be drawn from."""
    fixed = torch.zeros(2 * n, 3, dtype=torch.bool)
    fixed[:n, 1], fixed[n:, 2] = True, True
    ids = torch.zeros(2 * n, 3, dtype=torch.long)
    ids[:n, 1] = 2
    mid, last = torch.zeros_like(P.p0), torch.zeros_like(P.p0)
    mid[:, 2, :] = P.p0[:, 2, :] / P.p0[:, 2, :].sum()
    last[..., 0] = P.p0[..., 0] / P.p0[..., 0].sum()
    return ids, fixed, mid, last


def test_first_hitting_has_no_discretisation_bias():
    """Chi-square tests at 200,000 samples: first_hitting is consistent with p0, and with p0(. | fixed)
    when tokens are fixed; analytic at 4 steps fails the same test (its bias shows at this size)."""
    P = ExactProblem("absorb")
    n = 200_000
    out = sample(P.log_score, P.graph, LogLinear(), (n, 3), FIRST, generator=torch.Generator().manual_seed(0))
    assert P.p_value(out, P.p0) > 1e-3
    coarse = sample(P.log_score, P.graph, LogLinear(), (n, 3), Settings(steps=4), generator=torch.Generator().manual_seed(0))
    assert P.p_value(coarse, P.p0) < 1e-6
    ids, fixed, mid, last = conditioned(P, n // 2)
    out = sample(P.log_score, P.graph, LogLinear(), (n, 3), FIRST, Fixed(ids, fixed),
                 generator=torch.Generator().manual_seed(1))
    assert (out[fixed] == ids[fixed]).all()
    assert P.p_value(out[:n // 2], mid) > 1e-3 and P.p_value(out[n // 2:], last) > 1e-3


def test_first_hitting_calls_once_per_free_slot_with_a_clock_per_row():
    P = ExactProblem("absorb")
    rows = []

    def score_fn(x, sigma):
        rows.append(len(x))
        return P.log_score(x, sigma)

    n = 100_000
    fixed = torch.zeros(n, 3, dtype=torch.bool)
    fixed[n // 2:, 0] = True  # half the rows have 3 free slots, half 2
    states = list(sample_iter(score_fn, P.graph, LogLinear(), (n, 3), FIRST, Fixed(torch.ones(n, 3, dtype=torch.long), fixed),
                              generator=torch.Generator().manual_seed(2)))
    assert [s.calls for s in states] == [0, 1, 2, 3] and states[-1].done and len(states) == 4
    assert rows == [n, n, n // 2]  # each row goes through the network once per free slot, no more
    assert all((s.changed.sum(1) == (s.step <= (3 - fixed.sum(1)))).all() for s in states[1:])  # one slot per call
    assert not states[-1].open.any() and (states[-1].tokens < 3).all()
    # Log-linear noise: the k-th of 3 unmaskings happens at the (4 - k)-th order statistic of U(0, 1).
    three = ~fixed[:, 0]
    for s, mean in zip(states[1:], (0.75, 0.5, 0.25)):
        assert abs(s.t[three].mean().item() - mean) < 0.005
    assert all((b.t <= a.t).all() for a, b in zip(states, states[1:]))


def test_first_hitting_several_slots_per_call_and_other_noise():
    P = ExactProblem("absorb")
    for noise in (LogLinear(), Geometric(1e-3, 20.0)):
        states = list(sample_iter(P.log_score, P.graph, noise, (4, 3), Settings("first_hitting", options={"per_call": 2}),
                                  generator=torch.Generator().manual_seed(0)))
        assert [s.calls for s in states] == [0, 1, 2]
        assert [int(s.changed.sum()) for s in states[1:]] == [8, 4]
        assert (states[-1].tokens < 3).all()


def test_cached_sampler_draws_what_the_uncached_one_draws():
    """A time-independent score lets rows whose tokens did not change skip the network: same draws."""
    P = ExactProblem("absorb")
    ids, fixed, _, _ = conditioned(P, 500)
    runs = {}
    for cache in (True, False):
        oracle = TimeFree(P.log_score)
        score_fn = oracle if cache else lambda x, sigma: oracle(x, sigma)  # no time_independent attribute: no cache
        states = list(sample_iter(score_fn, P.graph, LogLinear(), (1000, 3), Settings(steps=32), Fixed(ids, fixed),
                                  generator=torch.Generator().manual_seed(4)))
        runs[cache] = (torch.stack([s.tokens for s in states]), oracle.rows)
    assert torch.equal(runs[True][0], runs[False][0])
    assert runs[True][1] < runs[False][1] / 3  # rows scored: most steps change nothing in a row


def test_cached_calls_match_the_expected_number_of_changes():
    """With T steps and L free slots that each unmask in a uniform step, a row changes at
    T (1 - (1 - 1/T)^L) distinct steps on average: the number of calls the cache leaves."""
    T, L = 128, 16
    oracle = TimeFree(Independent(5, L))
    calls = [list(sample_iter(oracle, oracle.score_fn.graph, LogLinear(), (1, L), Settings(steps=T),
                              generator=torch.Generator().manual_seed(seed)))[-1].calls for seed in range(60)]
    expected = T * (1 - (1 - 1 / T) ** L)
    assert abs(sum(calls) / len(calls) / expected - 1) < 0.05, (sum(calls) / len(calls), expected)


def test_sampler_errors():
    P = ExactProblem("absorb")
    with pytest.raises(ValueError, match="unknown sampler"):
        Settings("heun")
    with pytest.raises(ValueError, match="steps must be"):
        Settings(steps=0)
    with pytest.raises(ValueError, match="the fixed ids and mask must have the shape"):
        sample(P.log_score, P.graph, LogLinear(), (1, 3), Settings(),
               Fixed(torch.zeros(1, 4, dtype=torch.long), torch.ones(1, 4, dtype=torch.bool)))
    with pytest.raises(ValueError, match="the first_hitting sampler needs the absorbing graph"):
        sample(ExactProblem("uniform").log_score, ExactProblem("uniform").graph, LogLinear(), (1, 3), FIRST)
    with pytest.raises(ValueError, match="per_call must be"):
        Settings("first_hitting", options={"per_call": 0})
    with pytest.raises(ValueError, match="slot 1 is fixed but holds no valid token id"):
        sample(P.log_score, P.graph, LogLinear(), (1, 3), Settings(),
               Fixed(torch.full((1, 3), 3), torch.ones(1, 3, dtype=torch.bool)))
    with pytest.raises(ValueError, match="the start time must lie in"):
        sample(P.log_score, P.graph, LogLinear(), (1, 3), Settings(), start=Start(None, 0.0))
