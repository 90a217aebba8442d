"""Training configuration: a YAML/JSON file plus `section.key=value` overrides, checked before any compute."""
import json
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import List, Optional

import yaml

from sedd_core.config import ModelConfig, SEDDConfig


@dataclass
class DataConfig:
    train: List[str] = field(default_factory=list)
    valid: List[str] = field(default_factory=list)
    valid_fraction: float = 0.01
    tokenizer: str = "train"
    vocab_size: int = 4096
    cache_dir: str = "data/cache"


@dataclass
class OptimConfig:
    lr: float = 3e-4
    weight_decay: float = 0.0
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    warmup: int = 2500
    grad_clip: float = 1.0


@dataclass
class TrainingConfig:
    out_dir: str = "runs/sedd"
    steps: int = 1000
    batch_size: int = 512
    accum: int = 1
    ema: float = 0.9999
    seed: int = 0
    mixed_precision: str = "bf16"
    fsdp: bool = False
    stratified_t: bool = True
    threads: int = 0
    log_every: int = 10
    eval_every: int = 200
    eval_batches: int = 4
    eval_points: int = 32
    sample_every: int = 500
    sample_steps: int = 64
    checkpoint_every: int = 200
    keep_checkpoints: int = 2


@dataclass
class TrainConfig:
    objective: str = "sedd"
    graph: str = "absorb"
    noise: str = "loglinear"
    sigma_min: float = 1e-4
    sigma_max: float = 20.0
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)

    def sedd_config(self, tokens: int) -> SEDDConfig:
        """The model's run config (raises on impossible sizes)."""
        return SEDDConfig(tokens, self.graph, self.noise, self.sigma_min, self.sigma_max, self.model)

    def to_dict(self) -> dict:
        return asdict(self)


HELP = {  # what `python -m training.train --help` says of each key
    "objective": "sedd (score entropy), or ar: the autoregressive baseline of the same size",
    "graph": "absorb (mask token) or uniform",
    "noise": "loglinear (with absorb) or geometric (with uniform)",
    "sigma_min": "geometric noise: total noise at t=0",
    "sigma_max": "geometric noise: total noise at t=1",
    "model.hidden_size": "transformer width",
    "model.cond_dim": "width of the noise-level embedding that modulates every block",
    "model.n_blocks": "transformer blocks",
    "model.n_heads": "attention heads; must divide hidden_size into an even head size",
    "model.length": "context: tokens per training block, and the model's sequence length",
    "model.scale_by_sigma": "absorb only: scale the output by the noise level, as the paper does",
    "model.dropout": "dropout rate in the blocks",
    "model.time_conditioning": "false: no noise-level input (absorb, scale_by_sigma); samplers then reuse unchanged rows",
    "data.train": ".txt / .jsonl files or hf:NAME[:CONFIG][@SPLIT] datasets (a list, or comma-separated)",
    "data.valid": "held-out files or datasets; empty: hold out valid_fraction of the training blocks",
    "data.valid_fraction": "share of the training blocks held out when data.valid is empty",
    "data.tokenizer": "gpt2, a tokenizer.json path, or train (a byte-level BPE trained on the corpus)",
    "data.vocab_size": "vocabulary of the trained BPE (data.tokenizer=train)",
    "data.cache_dir": "where tokenizers and memory-mapped token arrays are cached",
    "optim.lr": "AdamW learning rate after warm-up (then constant)",
    "optim.weight_decay": "AdamW weight decay",
    "optim.beta1": "AdamW beta1",
    "optim.beta2": "AdamW beta2",
    "optim.eps": "AdamW epsilon",
    "optim.warmup": "steps of linear learning-rate warm-up",
    "optim.grad_clip": "clip the gradients' global norm to this",
    "training.out_dir": "run folder: checkpoints/, model/ (the exported EMA model), metrics, curves, samples",
    "training.steps": "optimizer steps in all (a resumed run continues up to this)",
    "training.batch_size": "sequences per optimizer step, over all processes and accumulation steps",
    "training.accum": "gradient accumulation: micro-batches per optimizer step",
    "training.ema": "EMA decay of the exported weights (warmed up as (1+step)/(10+step))",
    "training.seed": "seed of initialisation, data order and every step's noise",
    "training.mixed_precision": "bf16 or no; used on GPU only",
    "training.fsdp": "shard weights, gradients, Adam moments and EMA over the processes (FSDP2)",
    "training.stratified_t": "draw the batch's diffusion times stratified over [0, 1]",
    "training.threads": "CPU threads per process; 0: torch's default",
    "training.log_every": "steps between loss rows in metrics.jsonl",
    "training.eval_every": "steps between validation perplexities (ELBO bound for sedd, exact for ar)",
    "training.eval_batches": "validation micro-batches evaluated each time",
    "training.eval_points": "quadrature points in t for the validation ELBO",
    "training.sample_every": "steps between sample snapshots (samples/step_N.txt)",
    "training.sample_steps": "sampler steps for the snapshots",
    "training.checkpoint_every": "steps between checkpoints (and model/ exports)",
    "training.keep_checkpoints": "newest checkpoints kept",
}


def keys(obj=None, prefix=""):
    """(dotted key, default) of every config key, in file order."""
    obj = TrainConfig() if obj is None else obj
    for f in fields(obj):
        value = getattr(obj, f.name)
        if is_dataclass(value):
            yield from keys(value, f"{prefix}{f.name}.")
        else:
            yield f"{prefix}{f.name}", value


def _build(cls, values: dict, where: str):
    defaults = cls()
    known = sorted(f.name for f in fields(cls))
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ValueError(f"unknown config key {where}{unknown[0]!r}: {where or 'the top level '}accepts {known}")
    kwargs = {}
    for name, value in values.items():
        default = getattr(defaults, name)
        if is_dataclass(default):
            if not isinstance(value, dict):
                raise ValueError(f"{where}{name} must be a section of keys, got {value!r}")
            kwargs[name] = _build(type(default), value, f"{where}{name}.")
        else:
            kwargs[name] = _coerce(value, default, f"{where}{name}")
    return cls(**kwargs)


def _coerce(value, default, name):
    if isinstance(default, bool):
        if isinstance(value, str):
            if value.lower() not in ("true", "false", "1", "0"):
                raise ValueError(f"{name} must be true or false, got {value!r}")
            return value.lower() in ("true", "1")
        return bool(value)
    if isinstance(default, (int, float)) and not isinstance(value, (int, float)):
        try:
            return type(default)(float(value)) if isinstance(default, int) else float(value)
        except ValueError as err:
            raise ValueError(f"{name} must be a number, got {value!r}") from err
    if isinstance(default, list) and isinstance(value, str):
        return [v for v in value.split(",") if v]
    return value


def load_config(path: Optional[str] = None, overrides: List[str] = ()) -> TrainConfig:
    """Read a YAML or JSON file, apply `a.b=value` overrides, and validate every key and size."""
    values: dict = {}
    if path:
        if not Path(path).is_file():
            raise FileNotFoundError(f"config file {path} does not exist")
        text = Path(path).read_text()
        values = (json.loads(text) if str(path).endswith(".json") else yaml.safe_load(text)) or {}
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"override {item!r} must look like section.key=value")
        key, value = item.split("=", 1)
        *parents, leaf = key.split(".")
        node = values
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = yaml.safe_load(value) if value else value
    cfg = _build(TrainConfig, values, "")
    cfg.sedd_config(tokens=max(2, cfg.data.vocab_size))  # size checks now, before any data or compute
    if cfg.objective not in ("sedd", "ar"):
        raise ValueError(f"objective must be sedd or ar, got {cfg.objective!r}")
    t = cfg.training
    if t.batch_size < 1 or t.accum < 1 or t.batch_size % t.accum:
        raise ValueError(f"training.batch_size={t.batch_size} must be a positive multiple of training.accum={t.accum}")
    if t.mixed_precision not in ("no", "bf16"):
        raise ValueError(f"training.mixed_precision must be no or bf16, got {t.mixed_precision!r}")
    if not cfg.data.train:
        raise ValueError("data.train is empty: name at least one .txt/.jsonl file or hf:DATASET")
    return cfg
