"""The real model's path offline (`python app.py --model louaaron/sedd-small`).

A small random model in louaaron/sedd-small's exact hub layout (the run config at the top level of
config.json, the weights as pytorch_model.bin with the official names, no tokenizer.json) sits in a
temporary hub cache beside a tiny GPT-2-style tokenizer in the layout that
`transformers.AutoTokenizer.from_pretrained("gpt2")` reads (models--gpt2/refs/main, snapshots/<commit>/,
files linked to blobs/), with the hub offline: the library's GPT-2 fallback runs as it does after a
first run with network. A folder that carries its own GPT-2-style tokenizer.json needs no cache.
"""
import hashlib
import io
import json
from pathlib import Path

import pytest
import torch
from huggingface_hub import constants
from safetensors.torch import save_file
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

import app.cli
from app.canvas import Canvas
from app.ui import build_demo
from conftest import TEXT
from sedd_core import SEDDPipeline, build
from sedd_core.checkpoint import resolve
from sedd_core.config import SEDDConfig

EOS = "<|endoftext|>"
LENGTH = 48


def gpt2_style_tokenizer() -> Tokenizer:
    """Byte-level BPE with GPT-2's pre-tokenizer, decoder and post-processor, <|endoftext|> the last id."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(vocab_size=300, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(TEXT + ["Once upon a time they lived happily ever after."] * 5, trainer)
    tok.add_special_tokens([EOS])
    return tok


def gpt2_files(tok: Tokenizer) -> dict:
    """The files of the gpt2 hub repository that its tokenizer is read from."""
    bpe, eos = json.loads(tok.to_str())["model"], tok.token_to_id(EOS)
    merges = "".join(f"{m if isinstance(m, str) else ' '.join(m)}\n" for m in bpe["merges"])
    return {
        "config.json": {"model_type": "gpt2", "vocab_size": tok.get_vocab_size(), "n_positions": 1024,
                        "bos_token_id": eos, "eos_token_id": eos},
        "tokenizer_config.json": {"model_max_length": 1024},
        "tokenizer.json": tok.to_str(),
        "vocab.json": bpe["vocab"],
        "merges.txt": "#version: 0.2\n" + merges,
    }


def official_config(tokens: int) -> dict:
    """The official Hydra run config (configs/config.yaml of the reference code) at tiny sizes."""
    return {
        "ngpus": 8, "tokens": tokens,
        "training": {"batch_size": 512, "accum": 1, "n_iters": 1300001, "ema": 0.9999},
        "data": {"train": "openwebtext", "valid": "wikitext103", "cache_dir": "data"},
        "graph": {"type": "absorb", "file": "data", "report_all": False},
        "noise": {"type": "loglinear", "sigma_min": 1e-4, "sigma_max": 20},
        "sampling": {"predictor": "euler", "steps": 128, "noise_removal": True},
        "optim": {"weight_decay": 0, "optimizer": "AdamW", "lr": 3e-4, "warmup": 2500, "grad_clip": 1.0},
        "model": {"name": "small", "type": "ddit", "hidden_size": 32, "cond_dim": 16, "length": LENGTH,
                  "n_blocks": 2, "n_heads": 4, "scale_by_sigma": True, "dropout": 0.1},
    }


def random_state(config: dict) -> dict:
    torch.manual_seed(0)
    model, _, _ = build(SEDDConfig.from_dict(config))
    for p in model.parameters():  # the zero-initialised output layers would give a constant score
        torch.nn.init.normal_(p, std=0.2)
    return model.state_dict()


def as_bytes(content) -> bytes:
    if isinstance(content, bytes):
        return content
    return (content if isinstance(content, str) else json.dumps(content)).encode()


def hub_entry(cache: Path, repo_id: str, files: dict, commit: str):
    """models--OWNER--NAME/{refs/main, blobs/<sha256>, snapshots/<commit>/<file> -> ../../blobs/<sha256>}."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / commit
    for folder in (repo / "blobs", repo / "refs", snapshot):
        folder.mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    for name, content in files.items():
        data = as_bytes(content)
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        (snapshot / name).symlink_to(Path("..", "..", "blobs", blob.name))


def torch_bytes(state: dict) -> bytes:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


@pytest.fixture
def tok():
    return gpt2_style_tokenizer()


@pytest.fixture
def offline_cache(tmp_path, monkeypatch):
    """An empty hub cache, the hub offline (as HF_HUB_CACHE and HF_HUB_OFFLINE=1 set it)."""
    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return cache


def sedd_small_files(tok) -> dict:
    config = official_config(tok.get_vocab_size())
    return {"config.json": config, "pytorch_model.bin": torch_bytes(random_state(config))}


def check_pipeline(pipe, tok):
    """Loads as a GPT-2 model would, generates around fixed text, and the editor caps the canvas."""
    assert pipe.tokenizer.eos_id == tok.token_to_id(EOS) == pipe.config.tokens - 1 and pipe.length == LENGTH
    text = pipe.infill("Once upon a time [[6]] happily ever after.", predictor="first_hitting", seed=0)[0]
    assert text.startswith("Once upon a time") and text.endswith(" happily ever after.")
    assert len(pipe.generate(prefix="The quick", length=12, steps=8, predictor="analytic")[0]) > len("The quick")
    assert pipe.score("The quick brown fox.").perplexity > 1
    demo = build_demo(pipe)
    canvases = [b for b in demo.blocks.values() if isinstance(b, Canvas)]
    assert len(canvases) == 1 and canvases[0].props["max_slots"] == LENGTH
    assert 0 < len(canvases[0].value) <= LENGTH  # the starting infill example fits


def test_hub_id_with_the_gpt2_fallback_offline(offline_cache, tok, monkeypatch):
    hub_entry(offline_cache, "louaaron/sedd-small", sedd_small_files(tok), "1" * 40)
    hub_entry(offline_cache, "gpt2", gpt2_files(tok), "2" * 40)
    assert not (resolve("louaaron/sedd-small") / "tokenizer.json").exists()  # so GPT-2's is the one used
    served = []
    monkeypatch.setattr(app.cli, "serve", lambda pipe, *args, **kwargs: served.append(pipe))
    assert app.cli.main(["--model", "louaaron/sedd-small", "--device", "cpu"]) == 0 and len(served) == 1
    check_pipeline(served[0], tok)


def test_hub_id_without_gpt2_cached_offline_ends_with_one_line(offline_cache, tok, capsys):
    hub_entry(offline_cache, "louaaron/sedd-small", sedd_small_files(tok), "1" * 40)
    assert app.cli.main(["--model", "louaaron/sedd-small", "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "GPT-2 tokenizer is not cached locally" in err and "Traceback" not in err


def test_folder_with_its_own_gpt2_style_tokenizer(offline_cache, tok, tmp_path):
    folder = tmp_path / "sedd-small-local"
    folder.mkdir()
    config = official_config(tok.get_vocab_size())
    (folder / "config.json").write_text(json.dumps({"config": config}))  # the run config nested under "config"
    save_file(random_state(config), folder / "model.safetensors")
    tok.save(str(folder / "tokenizer.json"))
    check_pipeline(SEDDPipeline.from_pretrained(folder, device="cpu"), tok)
