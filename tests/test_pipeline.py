"""The high-level object and the CLI on a tiny model: infill, prefix/suffix, streaming, scoring, errors."""
import pytest
import torch

from sedd_core import SEDDPipeline
from sedd_core.sample import main as cli


@pytest.fixture(scope="module")
def pipe(tiny_model_dir):
    return SEDDPipeline.from_pretrained(tiny_model_dir, device="cpu")


def test_template_infill_keeps_fixed_text(pipe):
    ids, fixed = pipe.template("The quick [[3]] fox [[2]] dog.")
    assert fixed.count(False) == 5 and len(ids) == len(fixed)
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


def test_errors(pipe):
    with pytest.raises(ValueError, match="every slot is fixed"):
        pipe.stream([1, 2], [True, True])
    with pytest.raises(ValueError, match="1 to 24 slots"):
        pipe.stream([0] * 25, [False] * 25)
    with pytest.raises(ValueError, match="steps must lie"):
        pipe.stream([0], [False], steps=0)
    with pytest.raises(ValueError, match="empty"):
        pipe.score("")
    with pytest.raises(ValueError, match="no room"):
        pipe.generate(prefix="The quick brown fox jumps over the lazy dog." * 3)


def test_cli(tiny_model_dir, capsys):
    cli(["--model", str(tiny_model_dir), "--infill", "It was [[4]] times.", "--steps", "4", "--batch", "2"])
    out = capsys.readouterr().out
    assert out.count("=== sample") == 2 and out.count("It was") == 2
    cli(["--model", str(tiny_model_dir), "--infill", "It was [[4]] times.", "--predictor", "first_hitting"])
    assert capsys.readouterr().out.count("It was") == 1
    with pytest.raises(SystemExit) as err:
        cli(["--model", str(tiny_model_dir / "missing")])
    assert err.value.code == 2
