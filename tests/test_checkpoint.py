"""Loading and saving: the official hub layout, the hub cache, save -> load, and clear errors."""
import json
import shutil

import pytest
import torch
from huggingface_hub import constants

from sedd_core import load_model, save_model
from sedd_core.checkpoint import read_config, read_weights


def outputs(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, model.vocab_embed.embedding.shape[0], (2, 10), generator=g)
    return model(x, torch.tensor([0.3, 2.0]))


def official_layout(src, dst):
    """Copy a model folder into the official layout: run config nested under `config` beside
    sections we ignore, weights as pytorch_model.bin."""
    dst.mkdir()
    run = read_config(src).to_dict() | {"training": {"batch_size": 512}, "data": {"train": "openwebtext"}}
    run["model"] |= {"name": "small", "type": "ddit"}
    (dst / "config.json").write_text(json.dumps({"config": run}))
    torch.save(read_weights(src), dst / "pytorch_model.bin")
    shutil.copy(src / "tokenizer.json", dst / "tokenizer.json")
    return dst


def test_official_layout_and_save_roundtrip(tiny_model_dir, tmp_path):
    model, graph, noise = load_model(tiny_model_dir)
    official, _, _ = load_model(official_layout(tiny_model_dir, tmp_path / "official"))
    assert torch.equal(outputs(model), outputs(official))
    save_model(tmp_path / "again", official, read_config(tmp_path / "official"))
    again, g2, _ = load_model(tmp_path / "again")
    assert torch.equal(outputs(model), outputs(again))
    assert graph.absorb and g2.absorb and not model.training
    assert sorted(p.name for p in (tmp_path / "again").iterdir()) == ["config.json", "model.safetensors"]


def test_hub_id_loads_from_hub_cache_offline(tiny_model_dir, tmp_path, monkeypatch):
    """A hub id resolves through huggingface_hub against a cache folder in the hub's exact layout."""
    repo = tmp_path / "hub" / "models--someone--sedd-tiny"
    snap = repo / "snapshots" / ("a" * 40)
    shutil.copytree(tiny_model_dir, snap)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("a" * 40)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    model, _, _ = load_model("someone/sedd-tiny")
    assert torch.equal(outputs(model), outputs(load_model(tiny_model_dir)[0]))
    with pytest.raises(ConnectionError, match="not in the local hub cache"):
        load_model("someone/not-cached")


def test_clear_errors(tiny_model_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_model(tmp_path / "nowhere")
    bad = tmp_path / "bad"
    shutil.copytree(tiny_model_dir, bad)
    (bad / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="has no weights"):
        load_model(bad)
    state = read_weights(tiny_model_dir)
    state["blocks.0.extra"] = torch.zeros(1)
    del state["blocks.1.norm2.weight"]
    state["vocab_embed.embedding"] = state["vocab_embed.embedding"][:-1]
    torch.save(state, bad / "pytorch_model.bin")
    with pytest.raises(ValueError) as err:
        load_model(bad)
    for part in ("missing blocks.1.norm2.weight", "unexpected blocks.0.extra", "vocab_embed.embedding has shape"):
        assert part in str(err.value)
    cfg = json.loads((bad / "config.json").read_text())
    cfg["graph"]["type"] = "ring"
    (bad / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="graph must be one of absorb, uniform; got 'ring'"):
        load_model(bad)
    (bad / "config.json").write_text("{}")
    with pytest.raises(ValueError, match="missing"):
        load_model(bad)
    (bad / "config.json").unlink()
    with pytest.raises(FileNotFoundError, match="no config.json"):
        load_model(bad)
