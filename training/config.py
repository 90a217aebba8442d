"""Training configuration: a YAML/JSON file plus `section.key=value` overrides, checked before any compute."""
import json
from dataclasses import asdict, dataclass, fields, is_dataclass
from pathlib import Path
from typing import List, Optional

import yaml

from sedd_core.config import RunFields, SEDDConfig, describe, setting
from sedd_core.precision import PRECISIONS


@dataclass
class DataConfig:
    train: List[str] = setting([], ".txt / .jsonl files or hf:NAME[:CONFIG][@SPLIT] datasets (a list, or comma-separated)")
    valid: List[str] = setting([], "held-out files or datasets; empty: hold out valid_fraction of the training blocks")
    valid_fraction: float = setting(0.01, "share of the training blocks held out when data.valid is empty",
                                    above=0.0, below=1.0)
    tokenizer: str = setting("train", "gpt2, a tokenizer.json path, or train (a byte-level BPE trained on the corpus)")
    vocab_size: int = setting(4096, "vocabulary of the trained BPE (data.tokenizer=train)", min=257, max=1 << 20)
    cache_dir: str = setting("data/cache", "where tokenizers and memory-mapped token arrays are cached")


@dataclass
class OptimConfig:
    lr: float = setting(3e-4, "AdamW learning rate after warm-up", above=0.0)
    schedule: str = setting("constant", "after warm-up: constant, or cosine down to lr * min_lr_ratio at training.steps",
                            choices=("constant", "cosine"))
    min_lr_ratio: float = setting(0.1, "cosine schedule: the last learning rate as a share of lr", min=0.0, max=1.0)
    weight_decay: float = setting(0.0, "AdamW weight decay", min=0.0)
    beta1: float = setting(0.9, "AdamW beta1", min=0.0, below=1.0)
    beta2: float = setting(0.999, "AdamW beta2", min=0.0, below=1.0)
    eps: float = setting(1e-8, "AdamW epsilon", above=0.0)
    warmup: int = setting(2500, "steps of linear learning-rate warm-up", min=0)
    grad_clip: float = setting(1.0, "clip the gradients' global norm to this", above=0.0)


@dataclass
class TrainingConfig:
    out_dir: str = setting("runs/sedd", "run folder: checkpoints/, model/ (the exported EMA model), metrics, curves, samples")
    steps: int = setting(1000, "optimizer steps in all (a resumed run continues up to this)", min=1)
    batch_size: int = setting(512, "sequences per optimizer step, over all processes and accumulation steps", min=1)
    accum: int = setting(1, "gradient accumulation: micro-batches per optimizer step", min=1)
    ema: float = setting(0.9999, "EMA decay of the exported weights (warmed up as (1+step)/(10+step))",
                         min=0.0, below=1.0)
    seed: int = setting(0, "seed of initialisation, data order and every step's noise", min=0, below=1 << 63)
    precision: str = setting("auto", "auto (bf16 where the hardware multiplies it natively: CUDA, or a CPU with "
                             "amx_bf16/avx512_bf16), fp32 or bf16: bf16 autocast with fp32 weights and optimizer",
                             choices=PRECISIONS)
    compile: bool = setting(False, "torch.compile the network and the AR baseline's cross-entropy "
                                   "(inductor; on a CPU it needs a C++ compiler)")
    fsdp: bool = setting(False, "shard weights, gradients, Adam moments and EMA over the processes (FSDP2)")
    stratified_t: bool = setting(True, "draw the batch's diffusion times stratified over [eps, 1], eps = 1e-3")
    threads: int = setting(0, "CPU threads per process; 0: torch's default", min=0)
    cpu_seconds: float = setting(0.0, "stop (evaluating, checkpointing and exporting) once this process's loop has "
                                      "used this much CPU time; 0: no limit (a sweep at equal CPU time sets it)", min=0.0)
    log_every: int = setting(10, "steps between loss rows in metrics.jsonl", min=1)
    eval_every: int = setting(200, "steps between validation perplexities (ELBO bound for sedd, exact for ar)", min=1)
    eval_batches: int = setting(4, "validation micro-batches evaluated each time", min=1)
    eval_points: int = setting(32, "quadrature points in t for the validation ELBO", min=1, max=4096)
    sample_every: int = setting(500, "steps between sample snapshots (samples/step_N.txt)", min=1)
    sample_steps: int = setting(64, "sampler steps for the snapshots", min=1, max=1024)
    checkpoint_every: int = setting(200, "steps between checkpoints (and model/ exports)", min=1)
    keep_checkpoints: int = setting(2, "newest checkpoints kept", min=1)


@dataclass
class TrainConfig(RunFields):
    objective: str = setting("sedd", "sedd (score entropy), or ar: the autoregressive baseline of the same size",
                             choices=("sedd", "ar"))
    data: DataConfig = setting(DataConfig, "where the text comes from")
    optim: OptimConfig = setting(OptimConfig, "the optimizer")
    training: TrainingConfig = setting(TrainingConfig, "the loop")

    def sedd_config(self, tokens: int) -> SEDDConfig:
        """The model's run config (raises on impossible sizes)."""
        return SEDDConfig(tokens=tokens, graph=self.graph, noise=self.noise, sigma_min=self.sigma_min,
                          sigma_max=self.sigma_max, model=self.model)

    def to_dict(self) -> dict:
        return asdict(self)


def keys():
    """(dotted key, default, help) of every config key, in declaration order."""
    return describe(TrainConfig)


def _build(cls, values: dict, where: str):
    defaults = cls()
    known = sorted(f.name for f in fields(cls))
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ValueError(f"unknown config key {where}{unknown[0]!r}: {where[:-1] or 'the top level'} accepts {known}")
    kwargs = {}
    for name, value in values.items():
        default = getattr(defaults, name)
        if is_dataclass(default):
            if not isinstance(value, dict):
                raise ValueError(f"{where}{name} must be a section of keys, got {value!r}")
            kwargs[name] = _build(type(default), value, f"{where}{name}.")
        elif isinstance(value, dict):
            raise ValueError(f"{where}{name} is a value, not a section; got {value!r}")
        else:
            kwargs[name] = _coerce(value, default, f"{where}{name}")
    return cls(**kwargs)


def _coerce(value, default, name):
    """Text from YAML or an override (YAML reads 3e-4 as text) to the field's type; `check` does the rest."""
    if not isinstance(value, str) or isinstance(default, str):
        return value
    if isinstance(default, bool):
        if value.lower() not in ("true", "false", "1", "0"):
            raise ValueError(f"{name} must be true or false, got {value!r}")
        return value.lower() in ("true", "1")
    if isinstance(default, (int, float)):
        try:
            number = float(value)
        except ValueError as err:
            raise ValueError(f"{name} must be a finite number, got {value!r}") from err
        return int(number) if isinstance(default, int) and number.is_integer() else number
    if isinstance(default, list):
        return [v for v in value.split(",") if v]
    return value


def _problem(err: Exception) -> str:
    """A parser's complaint in one line: a YAML error's problem and where it is, or the error itself."""
    if isinstance(err, yaml.MarkedYAMLError) and err.problem_mark is not None:
        mark = err.problem_mark
        return f"{err.problem} (line {mark.line + 1}, column {mark.column + 1})"
    return " ".join(str(err).split())


def _read(path: str) -> dict:
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"config file {path} does not exist")
    try:
        text = file.read_text(encoding="utf-8")
        values = json.loads(text) if file.suffix == ".json" else yaml.safe_load(text)
    except (UnicodeDecodeError, json.JSONDecodeError, yaml.YAMLError) as err:
        raise ValueError(f"config file {path} is not valid {'JSON' if file.suffix == '.json' else 'YAML'}: "
                         f"{_problem(err)}") from err
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ValueError(f"config file {path} must hold sections of keys, got {type(values).__name__} {values!r}")
    return values


def load_config(path: Optional[str] = None, overrides: List[str] = ()) -> TrainConfig:
    """Read a YAML or JSON file, apply `a.b=value` overrides, and validate every key, type and range
    in one pass (before any data, tokenizer or model is touched)."""
    values = _read(path) if path else {}
    for item in overrides:
        key, equals, value = item.partition("=")
        if not equals or not all(key.split(".")):
            raise ValueError(f"override {item!r} must look like section.key=value")
        *parents, leaf = key.split(".")
        node = values
        for n, p in enumerate(parents):
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ValueError(f"override {item!r}: {'.'.join(parents[:n + 1])} is a value, not a section")
        try:
            node[leaf] = yaml.safe_load(value) if value else value
        except yaml.YAMLError as err:
            raise ValueError(f"override {item!r}: the value is not valid YAML: {_problem(err)}") from err
    cfg = _build(TrainConfig, values, "")
    cfg.check_run()
    t = cfg.training
    if t.batch_size % t.accum:
        raise ValueError(f"training.batch_size={t.batch_size} must be a multiple of training.accum={t.accum}")
    if not cfg.data.train:
        raise ValueError("data.train is empty: name at least one .txt/.jsonl file or hf:DATASET")
    if Path(t.out_dir).exists() and not Path(t.out_dir).is_dir():
        raise ValueError(f"training.out_dir {t.out_dir} is a file, not a folder")
    return cfg
