"""Training objectives: each model family the trainer knows, as one object with one set of methods.

`SEDD` (score entropy on a DDiT) and `AR` (next-token cross-entropy on a causal transformer of the
same size) answer the same questions, so the training loop and `evaluation` never ask which
one they hold:
- `build()`: a freshly initialised network (SEDD: also its graph and noise);
- `loss(model, x0, generator)`: the per-sequence training loss (B,) of blocks x0 (B, L);
- `nats(model, x0, generator)`: nats per token (B, L): the ELBO bound (SEDD) or the exact NLL (AR);
- `sample(model, batch, generator, device)`: unconditional samples (batch, L);
- `config`: what the exported folder's config.json holds (`sedd_core.save_model` writes either).
`load(path)` gives the objective, weights and tokenizer of a model folder of either kind.
"""
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Optional

import torch

from sedd_core import SEDDConfig, SEDDPipeline, build
from sedd_core.checkpoint import exported
from sedd_core.likelihood import elbo
from sedd_core.loss import score_entropy_loss
from sedd_core.pipeline import Network
from sedd_core.samplers import Settings, sample
from sedd_core.tokenizer import TextTokenizer

from .ar import ar_loss, ar_nll, ar_sample, build_ar, token_nll
from .ar_folder import ARConfig, is_ar_folder, load_ar


@dataclass
class SEDD:
    config: SEDDConfig
    graph: object = None  # set by build(), or given with a loaded model
    noise: object = None
    stratified: bool = True  # the loss's times, one per stratum of [eps, 1]
    points: int = 32  # the ELBO's quadrature points (or Monte Carlo draws) in t
    method: str = "quadrature"
    sample_steps: int = 64
    exact: ClassVar[bool] = False  # nats() is an upper bound, estimated with random draws

    def build(self):
        model, self.graph, self.noise = build(self.config)
        return model

    def loss(self, model, x0, generator):
        return score_entropy_loss(model, self.graph, self.noise, x0, stratified=self.stratified, generator=generator)

    def nats(self, model, x0, generator):
        return elbo(model, self.graph, self.noise, x0, points=self.points, method=self.method, generator=generator)

    def sample(self, model, batch, generator, device):
        return sample(model, self.graph, self.noise, (batch, self.config.model.length), Settings(steps=self.sample_steps),
                      generator=generator)


@dataclass
class AR:
    config: ARConfig
    bos_id: int  # every block is read after this token (the end-of-text id)
    compile: bool = False  # the training loss's cross-entropy through torch.compile (fixed shapes: one graph)
    exact: ClassVar[bool] = True

    def __post_init__(self):
        self._nll = torch.compile(token_nll) if self.compile else token_nll

    def build(self):
        return build_ar(self.config)

    def loss(self, model, x0, generator):  # dropout draws from the global generator, seeded per step
        return ar_loss(model, x0, self.bos_id, self._nll)

    @torch.no_grad()
    def nats(self, model, x0, generator):
        return ar_nll(model, x0, self.bos_id)

    def sample(self, model, batch, generator, device):
        return ar_sample(model, batch, self.config.model.length, self.bos_id, generator, device)


def for_training(cfg, tokens: int, eos_id: int):
    """The objective a training config asks for (raises on impossible sizes)."""
    sedd_cfg = cfg.sedd_config(tokens)
    if cfg.objective == "ar":
        return AR(ARConfig(tokens, sedd_cfg.model), eos_id, compile=cfg.training.compile)
    t = cfg.training
    return SEDD(sedd_cfg, stratified=t.stratified_t, points=t.eval_points, sample_steps=t.sample_steps)


@dataclass
class Loaded:
    """A model folder ready to score: its objective, network (eval mode), tokenizer and, for SEDD, pipeline."""

    objective: object
    model: torch.nn.Module
    tokenizer: TextTokenizer
    pipe: Optional[SEDDPipeline] = None

    @property
    def length(self) -> int:
        return self.objective.config.model.length


def load(path=None, device="cpu", points: int = 128, method: str = "quadrature", precision: str = "auto") -> Loaded:
    """A SEDD model (folder, run folder, hub id, or None: the bundled model) or an exported AR baseline;
    its network runs at `precision` (sedd_core.precision)."""
    folder = exported(Path(path)) if path is not None else None
    if folder is not None and is_ar_folder(folder):
        model, tokenizer, cfg = load_ar(folder, device)
        return Loaded(AR(cfg, tokenizer.eos_id), Network(model, precision), tokenizer)
    pipe = SEDDPipeline.from_pretrained(path, device, precision)
    objective = SEDD(pipe.config, pipe.graph, pipe.noise, points=points, method=method)
    return Loaded(objective, pipe.scorer, pipe.tokenizer, pipe)
