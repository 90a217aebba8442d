"""sedd_core: Score Entropy Discrete Diffusion (Lou, Meng, Ermon 2024) in plain PyTorch."""
from .checkpoint import DEFAULT_MODEL, build, load_model, save_model
from .config import ModelConfig, SEDDConfig
from .controls import Controls
from .graph import Absorbing, Uniform
from .likelihood import elbo, perplexity_bound
from .loss import score_entropy_loss
from .model import DDiT
from .noise import Geometric, LogLinear
from .pipeline import SEDDPipeline
from .samplers import Fixed, SampleState, Settings, Start, final, sample, sample_iter

__all__ = [
    "DEFAULT_MODEL", "Controls", "build", "load_model", "save_model", "ModelConfig", "SEDDConfig", "Absorbing", "Uniform",
    "elbo", "perplexity_bound", "score_entropy_loss", "DDiT", "Geometric", "LogLinear", "SEDDPipeline",
    "Fixed", "SampleState", "Settings", "Start", "final", "sample", "sample_iter",
]
