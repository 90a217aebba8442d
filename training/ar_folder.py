"""The AR baseline as a model folder in the hub layout, loadable with nothing but this repository.

A folder holds `config.json` ({"objective": "ar", "tokens": V, "model": {...the DDiT sizes...}}),
`model.safetensors` (the causal DDiT's state dict) and `tokenizer.json`; the training package writes it
with `sedd_core.save_model` as it writes a SEDD model. `sedd_core.load_model` refuses it (its config
has no graph and no noise); `load_ar` reads it.
"""
import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from sedd_core.checkpoint import check_state_dict, read_weights
from sedd_core.config import ModelConfig, SEDDConfig
from sedd_core.model import DDiT
from sedd_core.tokenizer import TextTokenizer

from .ar import build_ar

ARCHITECTURE = "CausalLM: DDiT blocks, causal attention, zero conditioning (training/ar.py)"  # the format's name


@dataclass
class ARConfig:
    """The vocabulary and network sizes of an AR baseline (what its config.json holds)."""

    tokens: int
    model: ModelConfig

    def __post_init__(self):
        SEDDConfig(tokens=self.tokens, model=self.model)  # the same size rules as the SEDD network: raises

    def to_dict(self) -> dict:
        return {"objective": "ar", "architecture": ARCHITECTURE, "tokens": self.tokens, "model": asdict(self.model)}

    @classmethod
    def from_dict(cls, d) -> "ARConfig":
        if not isinstance(d, dict) or d.get("objective") != "ar":
            raise ValueError("it is not an AR baseline's config (no \"objective\": \"ar\")")
        if not isinstance(d.get("model"), dict) or "tokens" not in d:
            raise ValueError("it lacks \"tokens\" or the \"model\" section")
        names = {f.name for f in fields(ModelConfig)}
        try:
            return cls(d["tokens"], ModelConfig(**{k: v for k, v in d["model"].items() if k in names}))
        except TypeError as err:  # a size missing from the model section
            raise ValueError(f"its model section is incomplete: {err}") from err


def read_ar_config(folder) -> ARConfig:
    file = Path(folder) / "config.json"
    try:
        return ARConfig.from_dict(json.loads(file.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{file} cannot be read as JSON: {err}") from err
    except ValueError as err:
        raise ValueError(f"{file}: {err}") from err


def is_ar_folder(folder) -> bool:
    """Whether `folder` holds an exported AR baseline (its config.json says objective "ar")."""
    file = Path(folder) / "config.json"
    try:
        return json.loads(file.read_text(encoding="utf-8")).get("objective") == "ar"
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
        return False


def load_ar(folder, device="cpu"):
    """(model in eval mode, TextTokenizer, ARConfig) of an exported AR baseline."""
    folder = Path(folder)
    cfg = read_ar_config(folder)
    model: DDiT = build_ar(cfg)
    state = read_weights(folder)
    check_state_dict(model, state)
    model.load_state_dict(state)
    if not (folder / "tokenizer.json").is_file():
        raise FileNotFoundError(f"{folder} has no tokenizer.json")
    tokenizer = TextTokenizer.load(folder)
    if tokenizer.vocab_size > cfg.tokens or tokenizer.eos_id is None:
        raise ValueError(f"{folder}/tokenizer.json does not fit the model: {tokenizer.vocab_size} tokens "
                         f"for {cfg.tokens}, end-of-text id {tokenizer.eos_id}")
    return model.to(device).eval(), tokenizer, cfg
