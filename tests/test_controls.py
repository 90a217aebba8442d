"""Sampling controls, anchors (allowed tokens) and the samplers' options do what they claim, on problems
small enough to know the answer exactly."""
import pytest
import torch

from exact import ExactProblem
from sedd_core.controls import Controls
from sedd_core.noise import LogLinear
from sedd_core.samplers import Fixed, Settings, sample, sample_iter

N = 60_000


def one_free_slot(P, predictor="first_hitting", controls=Controls(), seed=0, steps=4, allowed=None):
    """Samples of slot 1 with slots 0 and 2 fixed to (2, 0), and the exact conditional p0(x1 | 2, ., 0)."""
    ids = torch.tensor([[2, 0, 0]]).expand(N, 3)
    fixed = torch.tensor([[True, False, True]]).expand(N, 3)
    out = sample(P.log_score, P.graph, LogLinear(), (N, 3), Settings(predictor, steps, controls), Fixed(ids, fixed, allowed),
                 generator=torch.Generator().manual_seed(seed))
    return out[:, 1], P.p0[2, :, 0] / P.p0[2, :, 0].sum()


def frequencies(tokens, n):
    return torch.bincount(tokens, minlength=n).double() / len(tokens)


def test_default_controls_are_the_exact_sampler_draw_for_draw():
    P = ExactProblem("absorb", tokens=4)
    for predictor in ("first_hitting", "analytic"):
        plain, _ = one_free_slot(P, predictor)
        same, _ = one_free_slot(P, predictor, Controls(temperature=1.0, top_p=1.0, top_k=0))
        assert torch.equal(plain, same)
    w = torch.rand(5, 9)
    shaped = Controls(temperature=1.0, top_p=1.0).shape(w)
    torch.testing.assert_close(shaped / shaped.sum(1, keepdim=True), (w / w.sum(1, keepdim=True)).double())


@pytest.mark.parametrize("predictor", ["first_hitting", "analytic"])
def test_temperature_half_squares_the_probabilities(predictor):
    P = ExactProblem("absorb", tokens=4)
    got, p = one_free_slot(P, predictor, Controls(temperature=0.5))
    assert torch.allclose(frequencies(got, 4), p**2 / (p**2).sum(), atol=0.01)


def test_temperature_zero_and_top_k_one_take_the_argmax():
    P = ExactProblem("absorb", tokens=4)
    for controls in (Controls(temperature=0), Controls(top_k=1)):
        got, p = one_free_slot(P, controls=controls)
        assert (got == p.argmax()).all()


def test_top_p_keeps_the_smallest_set_that_reaches_p():
    w = torch.tensor([[0.15, 0.5, 0.05, 0.3]], dtype=torch.float64)
    assert Controls(top_p=0.8).shape(w).gt(0).tolist() == [[False, True, False, True]]  # 0.5 + 0.3 = 0.8
    assert Controls(top_p=0.81).shape(w).gt(0).tolist() == [[True, True, False, True]]
    assert Controls(top_p=0.5).shape(w).gt(0).tolist() == [[False, True, False, False]]
    P = ExactProblem("absorb", tokens=4)
    got, p = one_free_slot(P, controls=Controls(top_p=0.6))
    keep = torch.zeros(4, dtype=torch.bool)
    order = p.argsort(descending=True)
    keep[order[:int((p[order].cumsum(0) < 0.6).sum()) + 1]] = True
    assert torch.allclose(frequencies(got, 4), torch.where(keep, p, 0) / p[keep].sum(), atol=0.01)


def test_allowed_tokens_restrict_and_renormalise():
    P = ExactProblem("absorb", tokens=4)
    allowed = {1: torch.tensor([False, True, False, True])}
    got, p = one_free_slot(P, allowed=allowed)
    assert torch.allclose(frequencies(got, 4), torch.where(allowed[1], p, 0) / p[allowed[1]].sum(), atol=0.01)


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_confidence_order_decides_its_share_per_call_and_never_a_fixed_slot(schedule):
    P = ExactProblem("absorb", tokens=3, length=3)
    fixed = torch.tensor([[False, True, False]]).expand(50, 3)
    ids = torch.ones(50, 3, dtype=torch.long)
    states = list(sample_iter(P.log_score, P.graph, LogLinear(), (50, 3), Settings("confidence", 2, options={"schedule": schedule}),
                              Fixed(ids, fixed), generator=torch.Generator().manual_seed(0)))
    assert [int(s.changed.sum(1).max()) for s in states[1:]] == [1, 1]  # 2 free slots over 2 calls
    assert all((s.tokens[:, 1] == 1).all() for s in states) and not states[-1].open.any()
    first = states[1]
    log_score = P.log_score(states[0].tokens, torch.ones(50))
    sure = log_score[:, [0, 2], :3].softmax(-1).amax(-1)  # (50, 2): the best token's probability
    chosen = first.changed[:, [0, 2]].float().argmax(1)
    assert torch.equal(chosen, sure.argmax(1))  # the surer slot went first


def test_remasking_revises_only_free_slots_and_ends_unmasked():
    P = ExactProblem("absorb", tokens=3, length=3)
    fixed = torch.tensor([[True, False, False]]).expand(200, 3)
    ids = torch.full((200, 3), 2)
    remask = Settings("analytic", 32, options={"remask": 0.3, "remask_from": 0.9, "remask_until": 0.2})
    assert not remask.exact and Settings("analytic", 32).exact
    states = list(sample_iter(P.log_score, P.graph, LogLinear(), (200, 3), remask, Fixed(ids, fixed),
                              generator=torch.Generator().manual_seed(0)))
    masked_again = sum(int(((a.tokens != P.graph.mask) & (b.tokens == P.graph.mask)).sum())
                       for a, b in zip(states, states[1:]))
    assert masked_again > 100  # decided slots were masked again ...
    assert all((s.tokens[:, 0] == 2).all() for s in states)  # ... never a fixed one
    assert (states[-1].tokens != P.graph.mask).all()


def test_bad_controls_are_named():
    with pytest.raises(ValueError, match="temperature must be a number from 0 up"):
        Controls(temperature=-1)
    with pytest.raises(ValueError, match="top_p must lie in"):
        Controls(top_p=0)
    with pytest.raises(ValueError, match="confidence must be one of max, entropy, margin, got 'vibes'"):
        Settings("confidence", options={"confidence": "vibes"})
    with pytest.raises(ValueError, match="remask must lie in"):
        Settings("euler", options={"remask": 1.5})
    with pytest.raises(ValueError, match="remask does not apply to the first_hitting sampler: it is an option of analytic, euler"):
        Settings("first_hitting", options={"remask": 0.1})
    P = ExactProblem("absorb")
    with pytest.raises(ValueError, match="the tokens slot 1 may take must be"):
        sample(P.log_score, P.graph, LogLinear(), (1, 3), Settings(),
               Fixed(torch.zeros(1, 3, dtype=torch.long), torch.zeros(1, 3, dtype=torch.bool),
                     {1: torch.zeros(3, dtype=torch.bool)}))
