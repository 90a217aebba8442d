"""The high-level object and the CLI on a tiny model: infill, prefix/suffix, streaming, scoring, errors."""
import re

import pytest
import torch

from sedd_core.cli import main as cli


@pytest.fixture
def pipe(tiny_pipe):
    return tiny_pipe


def test_template_infill_keeps_fixed_text(pipe):
    ids, fixed, anchors = pipe.template("The quick [[3]] fox [[2]] dog.")
    assert fixed.count(False) == 5 and len(ids) == len(fixed) and anchors == {}
    states = list(pipe.stream(ids, fixed, steps=6, seed=1, batch=2))
    final = states[-1].tokens
    assert final.shape == (2, len(ids)) and (final < pipe.graph.mask).all()
    fixed_t = torch.tensor(fixed)
    assert (final[:, fixed_t] == torch.tensor(ids)[fixed_t]).all()
    assert len({s.tokens.tolist().__str__() for s in states}) >= 3  # several distinct intermediate states
    out = pipe.infill("The quick [[3]] fox [[2]] dog.", steps=6, seed=1, batch=2)
    assert out == [pipe.tokenizer.decode(row.tolist()) for row in final]


def test_generate_prefix_suffix(pipe):
    out = pipe.generate(prefix="It was", suffix="times.", length=12, steps=5)
    assert out[0].startswith("It was") and out[0].endswith("times.")
    assert len(pipe.generate(length=8, steps=3, batch=3)) == 3


def test_score(pipe):
    s = pipe.score("The quick brown fox.", points=16)
    assert len(s.tokens) == len(s.nats) and "".join(s.tokens) == "The quick brown fox."
    assert s.total == pytest.approx(sum(s.nats)) and s.perplexity > 1


BAD_CALLS = [  # (method, args, kwargs, message): every rule of the library's contract
    ("stream", ([1, 2], [True, True]), {}, "every slot is fixed"),
    ("stream", ([0] * 25, [False] * 25), {}, "1 to 24 slots"),
    ("stream", ([0], [False]), {"steps": 0}, "steps must be a whole number from 1 to 1,024, got 0"),
    ("stream", ([0], [False]), {"steps": 2.5}, "steps must be a whole number from 1 to 1,024, got 2.5"),
    ("stream", ([0], [False]), {"steps": "8"}, "steps must be a whole number from 1 to 1,024, got '8'"),
    ("stream", ([0], [False]), {"steps": None}, "steps is empty: give a whole number from 1 to 1,024"),
    ("stream", ([0], [False]), {"seed": 2**64}, "the seed must be a whole number from 0 to 9,223,372,036,854,775,807"),
    ("stream", ([0], [False]), {"predictor": "heun"}, "unknown sampler 'heun'"),
    ("stream", ([5, 0], ["false", False]), {}, "fixed must be a list of true/false values"),
    ("stream", ([True, 0], [True, False]), {}, "slot 1 is fixed but holds no valid token id (got True)"),
    ("stream", ([10**6, 0], [True, False]), {}, "slot 1 is fixed but holds no valid token id"),
    ("infill", ("A [[1000000000]] B",), {}, "a gap must be a whole number from 1 to 24, got 1,000,000,000"),
    ("infill", ("A [[20]] B [[20]] C",), {}, "slots; the model takes at most 24"),
    ("infill", ("A [[3]] B",), {"batch": 0}, "the batch (candidates) must be a whole number from 1 to 16, got 0"),
    ("infill", (None,), {}, "the template must be text, got NoneType"),
    ("infill", (123,), {}, "the template must be text, got int"),
    ("infill", ("\ud800 [[2]]",), {}, "not valid Unicode"),
    ("infill", ("x" * 10_000_000,), {}, "10,000,000 characters"),
    ("generate", (), {"length": 0}, "length must be a whole number from 1 to 24, got 0"),
    ("generate", (), {"length": 25}, "length must be a whole number from 1 to 24, got 25"),
    ("generate", ("The quick brown fox jumps over the lazy dog." * 3,), {}, "take 90 tokens: no room in 24"),
    ("generate", (), {"prefix": None}, "the prefix must be text, got NoneType"),
    ("score", ("",), {}, "nothing to score"),
    ("score", ("The fox.",), {"points": 10**9}, "points must be a whole number from 1 to 1,024"),
    ("score", ("The fox.",), {"seed": -1}, "the seed must be a whole number from 0 to"),
    ("score", ("x" * 20_000_000,), {}, "20,000,000 characters"),
]


@pytest.mark.parametrize("method, args, kwargs, message", BAD_CALLS,
                         ids=[f"{m}-{n}" for n, (m, *_) in enumerate(BAD_CALLS)])
def test_every_bad_call_gets_its_message(pipe, method, args, kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        getattr(pipe, method)(*args, **kwargs)


def test_cli(tiny_model_dir, capsys):
    cli(["--model", str(tiny_model_dir), "--infill", "It was [[4]] times.", "--steps", "4", "--batch", "2"])
    out = capsys.readouterr().out
    assert out.count("=== sample") == 2 and out.count("It was") == 2
    cli(["--model", str(tiny_model_dir), "--infill", "It was [[4]] times.", "--predictor", "first_hitting"])
    assert capsys.readouterr().out.count("It was") == 1
    with pytest.raises(SystemExit) as err:
        cli(["--model", str(tiny_model_dir / "missing")])
    assert err.value.code == 2
