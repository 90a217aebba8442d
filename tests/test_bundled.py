"""The bundled model: loads offline, its tokenizer round-trips text, it samples, and its model card's
validation figure is reproduced (same slice, same seed) within Monte Carlo error."""
import json

import pytest

from sedd_core import DEFAULT_MODEL, SEDDPipeline
from evaluation.cli import card_figure


@pytest.fixture(scope="module")
def pipe():
    return SEDDPipeline.from_pretrained(device="cpu")  # no name: the bundled model


def test_loads_offline_and_round_trips(pipe):
    assert pipe.config.graph == "absorb" and pipe.length >= 128
    text = "It is a truth universally acknowledged — “naïve” café, 1811! \n\tTabs & emoji 🙂."
    assert pipe.tokenizer.decode(pipe.tokenizer.encode(text)) == text
    assert sum(f.stat().st_size for f in DEFAULT_MODEL.iterdir()) < 50 * 2**20


def test_short_sample_and_infill(pipe):
    out = pipe.infill("Elinor said [[6]] to her sister.", steps=8, seed=0)[0]
    assert out.startswith("Elinor said") and out.endswith("to her sister.")
    assert len(pipe.generate(length=32, steps=8, seed=1)[0]) > 0


def test_model_card_figure_is_reproduced(pipe):
    ev = json.loads((DEFAULT_MODEL / "eval.json").read_text())
    got = card_figure(DEFAULT_MODEL, ev["blocks"], ev["points"], ev["seed"])
    card = (DEFAULT_MODEL / "README.md").read_text()
    assert f"{ev['sedd']['perplexity_bound']:.2f}" in card
    assert abs(got["elbo_nats_per_token"] - ev["sedd"]["elbo_nats_per_token"]) < 3 * ev["sedd"]["stderr_nats_per_token"]


def test_model_card_sample_quality_is_reproduced(tmp_path, monkeypatch):
    """The card's generative perplexity of exact samples and their entropy come back from the command it
    prints (fp32: the same samples wherever float32 matmuls round alike; within 3 standard errors else)."""
    from evaluation.cli import main as evaluate

    ev = json.loads((DEFAULT_MODEL / "eval.json").read_text())
    q = ev["quality"]
    card = (DEFAULT_MODEL / "README.md").read_text()
    assert q["command"] in card and all(f"| {g['goal']} | {g['measured']} |" in card for g in ev["goals"])
    monkeypatch.chdir(DEFAULT_MODEL.parent.parent)  # the card's paths are the clone's
    evaluate([*q["command"].split()[3:], "--out", str(tmp_path)])
    got = json.loads((tmp_path / "quality.json").read_text())
    fh = q["first_hitting"]
    assert abs(got["results"][0]["gen_ppl"] - fh["gen_ppl"]) < 3 * fh["gen_ppl_stderr"]
    assert abs(got["results"][0]["entropy"] - fh["entropy"]) < 3 * fh["entropy_stderr"]
    assert got["reference"]["gen_ppl"] == pytest.approx(q["heldout"]["gen_ppl"], rel=1e-6)  # no sampling in it
