"""The run configuration: one dataclass read from / written to `config.json` (official layout)."""
from dataclasses import asdict, dataclass, field, fields

GRAPHS = ("absorb", "uniform")
NOISES = ("loglinear", "geometric")
OPTIONAL_MODEL_KEYS = {"time_conditioning"}  # ours; official configs predate it (and mean True)


@dataclass
class ModelConfig:
    hidden_size: int = 768
    cond_dim: int = 128
    n_blocks: int = 12
    n_heads: int = 12
    length: int = 1024
    scale_by_sigma: bool = True
    dropout: float = 0.1
    time_conditioning: bool = True  # False: sigma-free network (absorbing graph, scale_by_sigma); exact caching


@dataclass
class SEDDConfig:
    tokens: int = 50257
    graph: str = "absorb"
    noise: str = "loglinear"
    sigma_min: float = 1e-4
    sigma_max: float = 20.0
    model: ModelConfig = field(default_factory=ModelConfig)

    def __post_init__(self):
        self.validate()

    def validate(self):
        m = self.model
        if self.graph not in GRAPHS:
            raise ValueError(f"unknown graph type {self.graph!r}: expected one of {GRAPHS}")
        if self.noise not in NOISES:
            raise ValueError(f"unknown noise type {self.noise!r}: expected one of {NOISES}")
        for name in ("hidden_size", "cond_dim", "n_blocks", "n_heads", "length"):
            if getattr(m, name) <= 0:
                raise ValueError(f"model.{name} must be positive, got {getattr(m, name)}")
        if self.tokens < 2:
            raise ValueError(f"tokens must be at least 2, got {self.tokens}")
        if m.hidden_size % m.n_heads or (m.hidden_size // m.n_heads) % 2:
            raise ValueError(
                f"model.n_heads={m.n_heads} must divide model.hidden_size={m.hidden_size} "
                "into an even head size (rotary embeddings)"
            )
        if m.scale_by_sigma and self.graph != "absorb":
            raise ValueError("model.scale_by_sigma only applies to the absorbing graph")
        if not m.time_conditioning and not (self.graph == "absorb" and m.scale_by_sigma):
            raise ValueError("model.time_conditioning=false needs the absorbing graph with model.scale_by_sigma=true "
                             "(the time then enters only through the analytic factor 1/(e^sigma - 1))")

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
    def from_dict(cls, d: dict) -> "SEDDConfig":
        """Read the official run config, at the top level or nested under a `config` key."""
        if "tokens" not in d and isinstance(d.get("config"), dict):
            d = d["config"]
        missing = [k for k in ("tokens", "graph", "noise", "model") if k not in d]
        if missing:
            raise ValueError(f"config is missing {missing}; found keys {sorted(d)}")
        model_keys = {f.name for f in fields(ModelConfig)}
        absent = sorted(model_keys - set(d["model"]) - OPTIONAL_MODEL_KEYS)
        if absent:
            raise ValueError(f"config model section is missing {absent}")
        noise = d["noise"]
        return cls(
            tokens=int(d["tokens"]),
            graph=d["graph"]["type"],
            noise=noise["type"],
            sigma_min=float(noise.get("sigma_min", 1e-4)),
            sigma_max=float(noise.get("sigma_max", 20.0)),
            model=ModelConfig(**{k: d["model"][k] for k in model_keys if k in d["model"]}),
        )
