"""The library behind the editor's power features: ranking, branching, gap-length search, anchors."""
import pytest
import torch

from exact import ExactProblem
from sedd_core.likelihood import conditional_elbo, elbo
from sedd_core.noise import LogLinear
from sedd_core.template import Anchor, parse


def test_conditional_elbo_bounds_the_conditional_nll_and_equals_the_elbo_when_all_is_free():
    P = ExactProblem("absorb", tokens=3, length=3)
    g = torch.Generator().manual_seed(0)
    x0 = P.sequences.repeat(300, 1)  # every sequence, 300 times
    every = torch.ones_like(x0, dtype=torch.bool)
    nats, _ = conditional_elbo(P.log_score, P.graph, LogLinear(), x0, every, points=64, max_batch=100_000, generator=g)
    full = elbo(P.log_score, P.graph, LogLinear(), x0, points=64, max_batch=100_000, generator=g).sum(-1)
    assert abs(nats.mean() - full.double().mean()) < 0.02
    free = every.clone()
    free[:, 0] = False  # given the first token: -log p(x1, x2 | x0)
    nats, stderr = conditional_elbo(P.log_score, P.graph, LogLinear(), x0, free, points=64, max_batch=100_000,
                                    generator=g)
    p0 = P.p0.reshape(3, 9)
    exact = -(p0 / p0.sum(1, keepdim=True)).log().reshape(-1)[torch.arange(27).repeat(300)]
    gap = (nats - exact).view(300, 27).mean(0)  # per sequence, averaged over 300 estimates
    assert (gap > -4 * stderr.view(300, 27).mean(0) / 300 ** 0.5).all()  # a bound ...
    assert gap.mean() < 0.05  # ... and a tight one with the exact score


def test_template_anchors_words_glued_to_gaps():
    """An anchored slot is one of its gap's N slots."""
    assert parse("The un[[3]]able dog [[2]]. [[1]]x") == [
        "The", Anchor("start", " un"), 1, Anchor("end", "able"), " dog ", 1, Anchor("end", "."), " ",
        Anchor("end", "x")]
    assert parse("A [[2]] B") == ["A ", 2, " B"]
    with pytest.raises(ValueError, match=r"\[\[1\]\] is glued to a word on each side: give it at least 2 slots"):
        parse("un[[1]]able")


@pytest.mark.parametrize("template, free", [
    ("un[[3]]", 3), ("[[5]].", 5), ("The un[[3]]able dog [[2]]. [[1]]x", 6), ("A [[4]] B [[2]]", 6),
    ("One [[8]] two.", 8), ("One [[3]] un[[3]] two.", 6),
])
def test_n_in_brackets_is_n_free_slots_on_the_canvas(tiny_pipe, template, free):
    _, fixed, _ = tiny_pipe.template(template)
    assert sum(not f for f in fixed) == free


@pytest.mark.parametrize("make", [
    lambda p: p.template("Once a time [[4]] happily."),
    lambda p: p.canvas("Once a time ", " the end.", 20),
    lambda p: p.compose(["The river ", 5, " sea."]),
])
def test_no_fixed_slot_is_a_lone_space_before_a_gap(tiny_pipe, make):
    """The space before a gap belongs to the gap's first token, as the tokenizer's words carry theirs."""
    ids, fixed, _ = make(tiny_pipe)
    pieces = tiny_pipe.tokenizer.pieces(ids)
    before_gaps = [pieces[n] for n in range(len(ids) - 1) if fixed[n] and not fixed[n + 1]]
    assert before_gaps and all(not p.endswith(" ") for p in before_gaps), before_gaps


def test_anchored_slots_keep_their_characters(tiny_pipe):
    ids, fixed, anchors = tiny_pipe.template("The qu[[3]]ck fox [[2]]ing.")
    assert sorted(a[0] for a in anchors.values()) == ["end", "end", "start"]  # " qu", "ck", "ing."
    for seed in range(10):
        for text in tiny_pipe.infill("The qu[[3]]ck fox [[2]]ing.", predictor="first_hitting", seed=seed, batch=4):
            assert text.startswith("The qu") and text.endswith("ing.") and "ck fox" in text, text
            assert text.index("ck fox") > len("The qu")  # the space after "fox" is the gap's to write


def test_ranking_is_best_first_and_agrees_with_the_score(tiny_pipe):
    texts = ["The quick brown fox jumps.", "It was the best of times.", "She sells sea shells."]
    rows = [tiny_pipe.encode(t) for t in texts]
    n = min(map(len, rows))
    rows = [r[:n] for r in rows]
    ranked = tiny_pipe.rank(rows[0], [False] * n, rows, points=200, seed=1)
    assert [r.nats_per_slot for r in ranked] == sorted(r.nats_per_slot for r in ranked)
    for r in ranked:
        score = tiny_pipe.score(tiny_pipe.tokenizer.decode(r.ids), points=128).total
        assert abs(r.nats_per_slot * r.slots - score) < 4 * r.stderr * r.slots + 0.5


def test_a_branch_keeps_what_its_frame_decided(tiny_pipe):
    ids, fixed, anchors = tiny_pipe.template("The [[6]] fox [[5]] dog.")
    states = list(tiny_pipe.stream(ids, fixed, anchors, predictor="first_hitting", seed=0, batch=2))
    frame = states[5]
    decided = frame.tokens != tiny_pipe.graph.mask
    for predictor in ("first_hitting", "analytic"):
        branch = list(tiny_pipe.stream(ids, fixed, anchors, predictor=predictor, seed=7, batch=2, steps=16,
                                       init=frame.tokens.tolist(), t_start=float(frame.t.max())))
        assert torch.equal(branch[-1].tokens[decided], frame.tokens[decided])
        assert not (branch[-1].tokens == tiny_pipe.graph.mask).any()
    assert not torch.equal(branch[-1].tokens, states[-1].tokens)  # another seed, another ending


def test_gap_search_tries_every_length(tiny_pipe):
    found = tiny_pipe.gap_search("The quick", " dog.", [1, 3, 5], seed=0, predictor="first_hitting")
    assert sorted(f.length for f in found) == [1, 3, 5]
    assert [f.nats_per_slot for f in found] == sorted(f.nats_per_slot for f in found)
    assert all(f.text.startswith("The quick") and f.text.endswith(" dog.") for f in found)
    with pytest.raises(ValueError, match="a gap length must be a whole number from 1 to 24, got 0"):
        tiny_pipe.gap_search("a", "b", [0])
