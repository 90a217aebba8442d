"""Shared fixtures: tiny models and tokenizers built on the spot (tests never touch the network)."""
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))

from sedd_core import ModelConfig, SEDDConfig, build, save_model  # noqa: E402
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
