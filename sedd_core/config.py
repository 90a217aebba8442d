"""The run configuration: one dataclass read from / written to `config.json` (official layout).

Every field is declared with `setting(default, help, ...)`: its help text and its valid range sit
with the field, and `check` validates a whole (nested) config against them in one pass. The training
package builds its config from the same fields (`RunFields` and `ModelConfig`), so each rule and
each default is written once.
"""
import math
from dataclasses import MISSING, asdict, dataclass, field, fields, is_dataclass
from typing import List, get_args, get_origin

GRAPHS = ("absorb", "uniform")
NOISES = ("loglinear", "geometric")
MAX_LENGTH = 1 << 17  # 131,072 slots: far beyond any model here, small enough to refuse a typo like 10**12
MAX_TOKENS = 1 << 24
OPTIONAL_MODEL_KEYS = {"time_conditioning"}  # ours; official configs predate it (and mean True)


def setting(default, help: str, *, min=None, above=None, max=None, below=None, choices=None):
    """A dataclass field with its help and valid range (inclusive min/max, exclusive above/below)."""
    meta = {"help": help, "min": min, "above": above, "max": max, "below": below, "choices": choices}
    if isinstance(default, type) or isinstance(default, list):  # a section, or a list default
        factory = default if isinstance(default, type) else (lambda: list(default))
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


def _type_error(name, typ, value) -> ValueError:
    what = {bool: "true or false", int: "a whole number", float: "a finite number", str: "text"}.get(typ, str(typ))
    return ValueError(f"{name} must be {what}, got {value!r}")


def check_value(name: str, value, f) -> None:
    """Raise a ValueError naming `name` when `value` is not of field `f`'s type or outside its range."""
    typ, meta = f.type, f.metadata
    if get_origin(typ) in (list, List):
        if not isinstance(value, list) or not all(isinstance(v, get_args(typ)[0]) for v in value):
            raise ValueError(f"{name} must be a list of {get_args(typ)[0].__name__}, got {value!r}")
        return
    ok = {bool: lambda v: isinstance(v, bool),
          int: lambda v: isinstance(v, int) and not isinstance(v, bool),
          float: lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v),
          str: lambda v: isinstance(v, str)}[typ]
    if not ok(value):
        raise _type_error(name, typ, value)
    if meta.get("choices") is not None and value not in meta["choices"]:
        raise ValueError(f"{name} must be one of {', '.join(map(str, meta['choices']))}; got {value!r}")
    bounds = [("min", lambda b: value >= b, "at least"), ("above", lambda b: value > b, "above"),
              ("max", lambda b: value <= b, "at most"), ("below", lambda b: value < b, "below")]
    for key, holds, words in bounds:
        if meta.get(key) is not None and not holds(meta[key]):
            raise ValueError(f"{name} must be {words} {meta[key]}, got {value!r}")


def check(obj, where: str = "") -> None:
    """Validate every field of a dataclass instance, recursing into sections."""
    for f in fields(obj):
        value = getattr(obj, f.name)
        if is_dataclass(f.type):
            if not isinstance(value, f.type):
                raise ValueError(f"{where}{f.name} must be a section of keys, got {value!r}")
            check(value, f"{where}{f.name}.")
        else:
            check_value(f"{where}{f.name}", value, f)


def describe(cls, where: str = ""):
    """(dotted key, default, help) of every field of a config dataclass, in declaration order."""
    for f in fields(cls):
        if is_dataclass(f.type):
            yield from describe(f.type, f"{where}{f.name}.")
        else:
            default = f.default_factory() if f.default is MISSING else f.default
            yield f"{where}{f.name}", default, f.metadata["help"]


@dataclass
class ModelConfig:
    hidden_size: int = setting(768, "transformer width", min=1)
    cond_dim: int = setting(128, "width of the noise-level embedding that modulates every block", min=1)
    n_blocks: int = setting(12, "transformer blocks", min=1)
    n_heads: int = setting(12, "attention heads; must divide hidden_size into an even head size", min=1)
    length: int = setting(1024, "context: the model's sequence length (and the training block)", min=1,
                          max=MAX_LENGTH)
    scale_by_sigma: bool = setting(True, "absorb only: scale the output by the noise level, as the paper does")
    dropout: float = setting(0.1, "dropout rate in the blocks", min=0.0, below=1.0)
    time_conditioning: bool = setting(True, "false: no noise-level input (absorb, scale_by_sigma); "
                                            "the samplers then reuse unchanged rows exactly")


@dataclass
class RunFields:
    """What rebuilds the graph, the noise and the network, less the vocabulary."""

    graph: str = setting("absorb", "absorb (mask token) or uniform", choices=GRAPHS)
    noise: str = setting("loglinear", "loglinear (with absorb) or geometric (with uniform)", choices=NOISES)
    sigma_min: float = setting(1e-4, "geometric noise: total noise at t=0", above=0.0)
    sigma_max: float = setting(20.0, "geometric noise: total noise at t=1", above=0.0)
    model: ModelConfig = setting(ModelConfig, "the network's sizes")

    def check_run(self, where: str = ""):
        """The per-field ranges, then the rules that tie fields together."""
        check(self, where)
        m = self.model
        if m.hidden_size % m.n_heads or (m.hidden_size // m.n_heads) % 2:
            raise ValueError(f"{where}model.n_heads={m.n_heads} must divide {where}model.hidden_size="
                             f"{m.hidden_size} into an even head size (rotary embeddings)")
        if self.noise == "geometric" and not self.sigma_min < self.sigma_max:
            raise ValueError(f"geometric noise needs {where}sigma_min < {where}sigma_max, "
                             f"got {self.sigma_min} and {self.sigma_max}")
        if m.scale_by_sigma and self.graph != "absorb":
            raise ValueError(f"{where}model.scale_by_sigma only applies to the absorbing graph")
        if not m.time_conditioning and not (self.graph == "absorb" and m.scale_by_sigma):
            raise ValueError(f"{where}model.time_conditioning=false needs the absorbing graph with "
                             f"{where}model.scale_by_sigma=true (the time then enters only through the "
                             "analytic factor 1/(e^sigma - 1))")


@dataclass
class SEDDConfig(RunFields):
    tokens: int = setting(50257, "vocabulary size (the mask of the absorbing graph not counted)", min=2,
                          max=MAX_TOKENS)

    def __post_init__(self):
        self.validate()

    def validate(self):
        self.check_run()

    @property
    def vocab_size(self) -> int:
        """Symbols the network sees and scores: tokens, plus the mask for the absorbing graph."""
        return self.tokens + (self.graph == "absorb")

    def to_dict(self) -> dict:
        """The official run-config layout (a subset of the Hydra config of the reference code)."""
        return {
            "tokens": self.tokens,
            "graph": {"type": self.graph},
            "noise": {"type": self.noise, "sigma_min": self.sigma_min, "sigma_max": self.sigma_max},
            "model": asdict(self.model),
        }

    @classmethod
    def from_dict(cls, d) -> "SEDDConfig":
        """Read the official run config, at the top level or nested under a `config` key; ValueError
        naming what is wrong when it is not one."""
        if isinstance(d, dict) and "tokens" not in d and isinstance(d.get("config"), dict):
            d = d["config"]
        if not isinstance(d, dict):
            raise ValueError(f"a run config is a JSON object, got {type(d).__name__}")
        missing = [k for k in ("tokens", "graph", "noise", "model") if k not in d]
        if missing:
            raise ValueError(f"config is missing {missing}; found keys {sorted(d)}")
        for key in ("graph", "noise", "model"):
            if not isinstance(d[key], dict):
                raise ValueError(f"config {key} must be an object, got {d[key]!r}")
        model_keys = {f.name for f in fields(ModelConfig)}
        absent = sorted(model_keys - set(d["model"]) - OPTIONAL_MODEL_KEYS)
        if absent:
            raise ValueError(f"config model section is missing {absent}")
        noise, defaults = d["noise"], cls.__dataclass_fields__
        return cls(
            tokens=d["tokens"],
            graph=d["graph"].get("type"),
            noise=noise.get("type"),
            sigma_min=noise.get("sigma_min", defaults["sigma_min"].default),
            sigma_max=noise.get("sigma_max", defaults["sigma_max"].default),
            model=ModelConfig(**{k: d["model"][k] for k in model_keys if k in d["model"]}),
        )
