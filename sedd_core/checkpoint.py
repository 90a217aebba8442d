"""Build (model, graph, noise) from a config; load and save model folders in the Hugging Face hub layout.

A folder holds `config.json` (the run config, top level or under `config`), the weights as
`model.safetensors` or `pytorch_model.bin`, and optionally our `tokenizer.json`.
"""
import json
import os
import pickle
import shutil
from pathlib import Path
from typing import Optional, Union

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .config import SEDDConfig
from .files import atomic_write, write_bytes, write_text
from .graph import build_graph
from .model import DDiT
from .noise import Geometric, LogLinear

def bundled(name: str) -> Path:
    """A bundled model's folder: sedd_core/assets/NAME when installed (`pip install .`), else the
    clone's assets/NAME."""
    here = Path(__file__).resolve().parent
    installed = here / "assets" / name
    return installed if installed.is_dir() else here.parent / "assets" / name


DEFAULT_MODEL = bundled("sedd-prose-v2")
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def build(cfg: SEDDConfig):
    """(model, graph, noise) for a config; the model is freshly initialised."""
    m = cfg.model
    model = DDiT(cfg.vocab_size, m.hidden_size, m.cond_dim, m.n_blocks, m.n_heads, m.dropout, m.scale_by_sigma,
                 m.time_conditioning)
    graph = build_graph(cfg.graph, cfg.tokens)
    noise = LogLinear() if cfg.noise == "loglinear" else Geometric(cfg.sigma_min, cfg.sigma_max)
    return model, graph, noise


def exported(folder: Path) -> Path:
    """`folder`, or the model a training run's folder holds in model/ when it has no config.json of its own."""
    if not (folder / "config.json").exists() and (folder / "model" / "config.json").exists():
        return folder / "model"
    return folder


def resolve(path_or_repo_id: Union[str, Path, None]) -> Path:
    """A local folder (or a training run's exported model); otherwise a hub id, fetched or from the hub cache."""
    if path_or_repo_id is None:
        path_or_repo_id = DEFAULT_MODEL
    path = Path(path_or_repo_id).expanduser()
    if path.is_dir():
        return exported(path)
    name = str(path_or_repo_id)
    if path.exists():
        raise FileNotFoundError(f"{name!r} is a file, not a model folder (a folder with config.json and weights)")
    if path.is_absolute() or name.startswith(".") or name.count("/") != 1:
        raise FileNotFoundError(f"model folder {name!r} does not exist (and it is not a hub id like 'owner/name')")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, RepositoryNotFoundError

    try:
        return Path(snapshot_download(name, allow_patterns=["config.json", "tokenizer.json", "README.md", *WEIGHT_FILES]))
    except LocalEntryNotFoundError as err:
        raise ConnectionError(
            f"cannot load {name!r}: it is not in the local hub cache and the hub cannot be reached "
            "(offline?). Download it on a machine with network access or pass a local folder."
        ) from err
    except (RepositoryNotFoundError, HfHubHTTPError) as err:
        raise FileNotFoundError(f"hub model {name!r} could not be found: {err}") from err


def read_card(folder: Path) -> Optional[str]:
    """The folder's model card (README.md) without its YAML front matter and pictures; None without one."""
    file = Path(folder) / "README.md"
    if not file.is_file():
        return None
    text = file.read_text(encoding="utf-8")
    if text.startswith("---\n"):
        text = text.split("\n---\n", 1)[-1]
    return "\n".join(line for line in text.splitlines() if not line.startswith("![")).strip()


def read_config(folder: Path) -> SEDDConfig:
    file = Path(folder) / "config.json"
    if not file.is_file():
        raise FileNotFoundError(f"{folder} has no config.json")
    try:
        return SEDDConfig.from_dict(json.loads(file.read_text(encoding="utf-8")))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{file} is not JSON text: {err}") from err
    except ValueError as err:
        raise ValueError(f"{file} is not a valid SEDD config: {err}") from err


def read_weights(folder: Path) -> dict:
    """The state dict of `folder`'s weights; a ValueError naming the file when it is damaged, holds
    anything but tensors, or (pytorch_model.bin) would run code when unpickled."""
    folder = Path(folder)
    if (folder / "model.safetensors").is_file():
        file = folder / "model.safetensors"
        try:
            state = load_file(file)
        except (SafetensorError, OSError) as err:
            raise ValueError(f"{file} is not a readable safetensors file (truncated or damaged?): {err}") from err
    elif (folder / "pytorch_model.bin").is_file():
        file = folder / "pytorch_model.bin"
        try:
            state = torch.load(file, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as err:
            raise ValueError(f"{file} was not loaded: it holds Python objects other than tensors, which "
                             "could run code when unpickled") from err
        except (RuntimeError, EOFError, OSError) as err:
            raise ValueError(f"{file} is not a readable PyTorch file (truncated or damaged?): {err}") from err
    else:
        raise FileNotFoundError(f"{folder} has no weights: expected one of {WEIGHT_FILES}")
    if not isinstance(state, dict):
        raise ValueError(f"{file} holds a {type(state).__name__}, not a dict of named tensors")
    odd = next((k for k, v in state.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)), None)
    if odd is not None:
        raise ValueError(f"{file} holds a {type(state[odd]).__name__} under {odd!r}, not only named tensors")
    return state


def _listed(kind: str, keys: list) -> list:
    """'missing a', or 'missing 52 keys (a, b, c, ...)' when there are many."""
    if len(keys) <= 3:
        return [f"{kind} {k}" for k in keys]
    return [f"{kind} {len(keys)} keys ({', '.join(keys[:3])}, ...)"]


def check_state_dict(model: torch.nn.Module, state: dict):
    """Raise a ValueError naming the missing, unexpected or mis-shaped keys."""
    own = model.state_dict()
    problems = _listed("missing", [k for k in own if k not in state])
    problems += _listed("unexpected", [k for k in state if k not in own])
    problems += [
        f"{k} has shape {tuple(state[k].shape)}, expected {tuple(v.shape)}"
        for k, v in own.items() if k in state and state[k].shape != v.shape
    ]
    if problems:
        raise ValueError("checkpoint does not match its config: " + "; ".join(problems))


def load_model(path_or_repo_id: Union[str, Path, None] = None, device="cpu"):
    """(model, graph, noise) from a folder, a hub id, or (None) the bundled model; model in eval mode."""
    folder = resolve(path_or_repo_id)
    model, graph, noise = build(read_config(folder))
    state = {k.removeprefix("module."): v for k, v in read_weights(folder).items()}
    check_state_dict(model, state)
    model.load_state_dict(state)
    return model.to(device).eval(), graph, noise


def save_model(folder, model: torch.nn.Module, cfg: SEDDConfig, tokenizer_file: Optional[Path] = None,
               dtype: Optional[torch.dtype] = None):
    """Write the hub layout: config.json, model.safetensors (optionally cast to `dtype`), tokenizer.json."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu", dtype or v.dtype).contiguous() for k, v in model.state_dict().items()}
    atomic_write(folder / "model.safetensors", lambda tmp: save_file(state, tmp))
    write_text(folder / "config.json", json.dumps(cfg.to_dict(), indent=2))
    if tokenizer_file is not None and Path(tokenizer_file).resolve() != (folder / "tokenizer.json").resolve():
        write_bytes(folder / "tokenizer.json", Path(tokenizer_file).read_bytes())


def export_folder(folder: Path, model, config, tokenizer_file):
    """The hub-layout folder of a model and its objective's `config`, never half-written: the first
    export appears whole through a rename; later ones replace each file atomically (config and
    tokenizer never change within a run)."""
    if folder.exists():
        save_model(folder, model, config, tokenizer_file)
        return
    tmp = folder.with_name(f".{folder.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    save_model(tmp, model, config, tokenizer_file)
    os.chmod(tmp, 0o755)  # readable by others, as its files are
    tmp.rename(folder)
