"""The AR baseline as a shippable model: `python -m training.bundle_ar` exports a tiny AR run's newest
checkpoint to a folder that loads with this repository alone and whose card figure is reproduced;
checkpoints keep their format (a run started before the export existed still exports); the
default model and its AR baseline stay under 100 MB together, and each shipped AR card's figure comes back
from the command it prints."""
import json
import shutil

import pytest
import torch

from conftest import metrics, tiny
from sedd_core import DEFAULT_MODEL, load_model
from sedd_core.checkpoint import read_config
from training.ar_folder import load_ar
from training.bundle_ar import main as bundle_ar
from evaluation.cli import ar_perplexity_of_run, main as evaluate
from evaluation.text import blocks
from sedd_core import precision
from training.state import REQUIRED, read_state
from training.train import main as train

CAUSAL_LM_KEYS = [  # the state-dict names of a one-block CausalLM, as the running AR baseline's checkpoints hold them
    "vocab_embed.embedding", "rotary_emb.inv_freq", "blocks.0.norm1.weight", "blocks.0.attn_qkv.weight",
    "blocks.0.attn_out.weight", "blocks.0.norm2.weight", "blocks.0.mlp.0.weight", "blocks.0.mlp.0.bias",
    "blocks.0.mlp.2.weight", "blocks.0.mlp.2.bias", "blocks.0.adaLN_modulation.weight",
    "blocks.0.adaLN_modulation.bias", "output_layer.norm_final.weight", "output_layer.linear.weight",
    "output_layer.linear.bias", "output_layer.adaLN_modulation.weight", "output_layer.adaLN_modulation.bias",
]


@pytest.fixture(scope="module")
def ar_run(corpus, tmp_path_factory):
    """A finished tiny AR run with checkpoints at steps 5 and 10; its model/ export removed, as an AR run
    started before AR runs exported holds only checkpoints."""
    out = tmp_path_factory.mktemp("ar") / "run"
    train(tiny(corpus, out, **{"objective": "ar", "training.steps": 10, "training.eval_every": 5,
                              "training.checkpoint_every": 5, "model.n_blocks": 1}))
    for f in (out / "model").iterdir():
        f.unlink()
    (out / "model").rmdir()
    return out


def test_checkpoints_keep_their_format(ar_run):
    state = read_state(ar_run / "checkpoints" / "step_00000010.pt")
    assert set(state) == set(REQUIRED) and list(state["model"]) == CAUSAL_LM_KEYS
    assert set(state["ema"]["shadow"]) == set(CAUSAL_LM_KEYS) - {"rotary_emb.inv_freq"}  # parameters only


def test_export_loads_alone_and_its_card_is_reproduced(ar_run, corpus, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(precision, "native_bf16", lambda device: True)  # "auto" would pick bf16: the card stays fp32
    out, sedd = tmp_path / "ar-prose-mini", tmp_path / "sedd-prose-x"  # the held-out text in its SEDD model's folder
    sedd.mkdir()
    (sedd / "config.json").write_text("{}")
    shutil.copy(corpus / "valid.txt", sedd / "heldout.txt")
    bundle_ar(["--run", str(ar_run), "--config", "tiny.yaml", "--out", str(out), "--heldout", str(sedd / "heldout.txt")])
    ev = json.loads(capsys.readouterr().out)
    assert {p.name for p in out.iterdir()} == {"config.json", "model.safetensors", "tokenizer.json", "README.md",
                                              "eval.json", "curves.png", "curves.html"}
    model, tokenizer, cfg = load_ar(out)
    state = read_state(ar_run / "checkpoints" / "step_00000010.pt")
    assert all(torch.equal(model.state_dict()[k], v) for k, v in state["ema"]["shadow"].items())  # the EMA weights
    assert cfg.model.length == 32 and tokenizer.eos_id is not None and ev["step"] == 10
    card = (out / "README.md").read_text()
    assert f"{ev['perplexity']:.2f}" in card and ev["command"] in card and "```text" in card
    assert "baseline of [sedd-prose-x](../sedd-prose-x)" in card
    assert "`python -m training.train tiny.yaml` — 10 steps" in card  # the whole run: no step override
    valid = [r["valid_ppl"] for r in metrics(ar_run) if "valid_ppl" in r]
    assert ev["perplexity"] < valid[0]  # trained: below the first validation figure
    x0 = blocks(tokenizer, [(sedd / "heldout.txt").read_text()], cfg.model.length, ev["blocks"])
    assert ev["perplexity"] == pytest.approx(ar_perplexity_of_run(ar_run, x0, tokenizer.eos_id)["perplexity"], rel=1e-9)
    assert ev["validation"]["best_valid_ppl"] == min(valid) and ev["validation"]["last_step"] == 10
    assert f"perplexity was lowest at step {ev['validation']['best_step']:,} ({min(valid):.2f}" in card
    evaluate([*ev["command"].split()[3:], "--device", "cpu", "--out", str(tmp_path / "eval")])
    got = json.loads((tmp_path / "eval" / "likelihood.json").read_text())["results"]
    assert next(iter(got.values()))["perplexity"] == pytest.approx(ev["perplexity"], rel=1e-9)
    with pytest.raises(ValueError, match="is missing"):  # the SEDD loader refuses it in words
        load_model(out)


def test_a_sedd_run_is_not_bundled_as_ar(corpus, tmp_path, capsys):
    train(tiny(corpus, tmp_path / "sedd", **{"training.steps": 2, "training.sample_every": 1000}))
    with pytest.raises(SystemExit) as err:
        bundle_ar(["--run", str(tmp_path / "sedd"), "--config", "tiny.yaml", "--out", str(tmp_path / "x"), "--heldout", str(corpus / "valid.txt")])
    assert err.value.code == 2 and "is not an AR baseline's run" in capsys.readouterr().err


def test_the_default_model_and_its_ar_baseline_fit_in_100_mb():
    ar = DEFAULT_MODEL.parent / "ar-prose-v2"
    baseline = load_ar(ar)[2].model  # the shipped baseline loads, at the default model's sizes
    sedd = read_config(DEFAULT_MODEL).model
    assert (baseline.length, baseline.hidden_size, baseline.n_blocks) == (sedd.length, sedd.hidden_size, sedd.n_blocks)
    size = sum(f.stat().st_size for folder in (DEFAULT_MODEL, ar) for f in folder.iterdir())
    assert size < 100 * 10**6


@pytest.mark.parametrize("name", ["ar-prose-v2", "ar-prose-mini"])
def test_the_shipped_ar_cards_figure_comes_back_from_its_command(name, tmp_path):
    folder = DEFAULT_MODEL.parent / name
    ev = json.loads((folder / "eval.json").read_text())
    assert f"Reproduce: `{ev['command']}`" in (folder / "README.md").read_text()
    args = ev["command"].split()
    assert args[:3] == ["python", "-m", "evaluation"]
    root = DEFAULT_MODEL.parent.parent  # the card's paths are relative to the repository
    args = [str(root / a) if a.startswith("assets/") else a for a in args[3:]]
    evaluate([*args, "--device", "cpu", "--out", str(tmp_path)])
    got = json.loads((tmp_path / "likelihood.json").read_text())["results"]
    # fp32 sums differ in their last bits between CPUs (v1's card was measured on an AMD EPYC: 5e-6 apart here);
    # the card prints two decimals, and bf16 would be 2e-3 off
    assert next(iter(got.values()))["perplexity"] == pytest.approx(ev["perplexity"], rel=1e-4)
