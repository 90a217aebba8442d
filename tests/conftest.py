"""Shared fixtures: tiny models and tokenizers built on the spot (tests never touch the network)."""
import json
import socket
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
ROOT = Path(__file__).resolve().parent.parent

from sedd_core import ModelConfig, SEDDConfig, SEDDPipeline, build, save_model  # noqa: E402
from training.tokenizer import train_tokenizer  # noqa: E402

TEXT = [
    "The quick brown fox jumps over the lazy dog.",
    "A journey of a thousand miles begins with a single step.",
    "It was the best of times, it was the worst of times.",
    "She sells sea shells by the sea shore, and the shells she sells are surely sea shells.",
] * 20


def tiny_config(tokens, graph="absorb", length=24):
    return SEDDConfig(
        tokens=tokens, graph=graph, noise="loglinear" if graph == "absorb" else "geometric",
        model=ModelConfig(hidden_size=32, cond_dim=16, n_blocks=2, n_heads=4, length=length,
                          scale_by_sigma=graph == "absorb", dropout=0.0),
    )


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A folder in the hub layout with a random tiny model and our own tokenizer.json."""
    folder = tmp_path_factory.mktemp("tiny-model")
    tok = train_tokenizer(TEXT, vocab_size=300)
    tok.save(str(folder / "tokenizer.json"))
    torch.manual_seed(0)
    cfg = tiny_config(tok.get_vocab_size())
    model, _, _ = build(cfg)
    for p in model.parameters():  # the zero-initialised output layers would give a constant score
        torch.nn.init.normal_(p, std=0.2)
    save_model(folder, model, cfg)
    return folder


@pytest.fixture(scope="session")
def tiny_pipe(tiny_model_dir):
    return SEDDPipeline.from_pretrained(tiny_model_dir, device="cpu")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def editor_url(tiny_pipe):
    """The editor on the tiny model, served in-process on a free port, as `python app.py` serves it."""
    from app.ui import serve

    demo = serve(tiny_pipe, prevent_thread_lock=True, server_name="127.0.0.1", server_port=free_port(), quiet=True)
    yield demo.local_url
    demo.close()


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    """A small training and held-out text for tiny runs."""
    folder = tmp_path_factory.mktemp("corpus")
    (folder / "train.txt").write_text("\n\n".join(TEXT * 3))
    (folder / "valid.txt").write_text("\n\n".join(TEXT[:8]))
    return folder


def tiny(corpus, out, **extra):
    """Overrides for a tiny training run on `corpus` writing to `out` (seconds on one CPU thread)."""
    values = {
        "data.train": str(corpus / "train.txt"), "data.valid": str(corpus / "valid.txt"), "data.vocab_size": 300,
        "data.cache_dir": str(corpus / "cache"), "training.out_dir": str(out), "training.batch_size": 8,
        "model.length": 32, "model.hidden_size": 32, "model.cond_dim": 16, "model.n_blocks": 2, "model.n_heads": 2,
        "model.dropout": 0.0, "optim.lr": 3e-3, "optim.warmup": 5, "training.ema": 0.9, "training.eval_points": 8,
        "training.eval_batches": 2, "training.log_every": 1, "training.threads": 1,
    } | extra
    return [f"{k}={v}" for k, v in values.items()]


def metrics(out):
    """The rows of a run's metrics.jsonl."""
    return [json.loads(line) for line in (Path(out) / "metrics.jsonl").read_text().splitlines()]
