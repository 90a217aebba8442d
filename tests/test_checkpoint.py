"""Loading and saving: the official hub layout, the hub cache, save -> load, and clear errors."""
import json
import os
import pickle
import re
import shutil

import pytest
import torch
from huggingface_hub import constants

from sedd_core import SEDDPipeline, load_model, save_model
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


class Payload:
    """Unpickling this would run a shell command: a malicious pytorch_model.bin."""

    def __reduce__(self):
        return (os.system, ("echo the payload ran",))


def _swap_weights(folder, obj):
    (folder / "model.safetensors").unlink()
    if isinstance(obj, Payload):
        (folder / "pytorch_model.bin").write_bytes(pickle.dumps(obj))
    else:
        torch.save(obj, folder / "pytorch_model.bin")


def _edit_config(folder, old, new):
    (folder / "config.json").write_text((folder / "config.json").read_text().replace(old, new))


DAMAGED = {  # how a model folder is broken -> what the one-line message says
    "truncated safetensors": (lambda d: (d / "model.safetensors").write_bytes(
        (d / "model.safetensors").read_bytes()[:1000]), "is not a readable safetensors file"),
    "pickle payload": (lambda d: _swap_weights(d, Payload()), "could run code when unpickled"),
    "bin holding a list": (lambda d: _swap_weights(d, [1, 2]), "holds a list, not a dict of named tensors"),
    "bin holding a number": (lambda d: _swap_weights(d, {"a": 1}), "holds a int under 'a'"),
    "config is a list": (lambda d: (d / "config.json").write_text("[1, 2]"), "a run config is a JSON object"),
    "config is binary": (lambda d: (d / "config.json").write_bytes(b"\xff\xfe\x00"), "is not JSON text"),
    "broken tokenizer": (lambda d: (d / "tokenizer.json").write_text("{not json"), "is not a readable tokenizer"),
    "dropout is text": (lambda d: _edit_config(d, '"dropout": 0.0', '"dropout": "x"'),
                        "model.dropout must be a finite number, got 'x'"),
    "absurd length": (lambda d: _edit_config(d, '"length": 24', '"length": 1000000000000'),
                      "model.length must be at most 131072"),
}


@pytest.mark.parametrize("damage", DAMAGED)
def test_a_damaged_model_folder_gets_one_line_and_exit_2(tiny_model_dir, tmp_path, capsys, damage):
    from app.cli import main as app_main
    from sedd_core.cli import main as sample_main

    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder)
    breaks, message = DAMAGED[damage]
    breaks(folder)
    with pytest.raises(ValueError, match=re.escape(message)):
        SEDDPipeline.from_pretrained(folder, "cpu")
    with pytest.raises(SystemExit) as err:
        sample_main(["--model", str(folder)])
    assert err.value.code == 2
    assert app_main(["--model", str(folder)]) == 2
    out = capsys.readouterr()
    assert out.err.count(message) == 2 and "Traceback" not in out.err + out.out and "payload ran" not in out.out
