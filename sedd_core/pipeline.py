"""The high-level object: a model with its tokenizer; generate, infill, stream and score text."""
import re
from dataclasses import dataclass
from typing import Iterator, List, Optional, Sequence

import torch

from .checkpoint import load_model, read_config, resolve
from .likelihood import elbo
from .sampling import SampleState, sample_iter
from .tokenizer import TextTokenizer

GAP = re.compile(r"\[\[(\d+)\]\]")  # "[[12]]" in a template stands for 12 free slots


@dataclass
class Score:
    """The ELBO of one text: total nats, per-token nats, and the perplexity bound exp(ELBO / L)."""

    tokens: List[str]
    nats: List[float]
    total: float
    perplexity: float


class SEDDPipeline:
    def __init__(self, model, graph, noise, tokenizer: TextTokenizer, config, device="cpu"):
        self.model, self.graph, self.noise = model, graph, noise
        self.tokenizer, self.config, self.device = tokenizer, config, torch.device(device)
        if tokenizer.vocab_size > config.tokens:
            raise ValueError(f"tokenizer has {tokenizer.vocab_size} tokens but the model only {config.tokens}")

    @classmethod
    def from_pretrained(cls, path_or_repo_id=None, device: Optional[str] = None) -> "SEDDPipeline":
        """Load a folder, a hub id, or (None) the bundled model; on CUDA when available unless `device` says."""
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        folder = resolve(path_or_repo_id)
        model, graph, noise = load_model(folder, device)
        return cls(model, graph, noise, TextTokenizer.load(folder), read_config(folder), device)

    @property
    def length(self) -> int:
        return self.config.model.length

    @property
    def predictors(self):
        """The samplers this model supports, the editor's default first (first_hitting needs a mask)."""
        return ("first_hitting", "analytic", "euler") if self.graph.absorb else ("analytic", "euler")

    def template(self, text: str):
        """Token ids and fixed mask (L,) for text in which `[[N]]` marks N free slots."""
        ids, fixed = [], []
        pos = 0
        for m in GAP.finditer(text):
            piece = self.tokenizer.encode(text[pos:m.start()])
            ids += piece + [0] * int(m.group(1))
            fixed += [True] * len(piece) + [False] * int(m.group(1))
            pos = m.end()
        piece = self.tokenizer.encode(text[pos:])
        return ids + piece, fixed + [True] * len(piece)

    def stream(self, ids: Sequence[int], fixed: Sequence[bool], steps: int = 128, predictor: str = "analytic",
               seed: int = 0, batch: int = 1) -> Iterator[SampleState]:
        """Sample `batch` candidates for one canvas: slots where `fixed` holds keep `ids`; yields every step."""
        if len(ids) != len(fixed):
            raise ValueError(f"ids ({len(ids)}) and fixed ({len(fixed)}) differ in length")
        if not 0 < len(ids) <= self.length:
            raise ValueError(f"the canvas must have 1 to {self.length} slots, got {len(ids)}")
        if all(fixed):
            raise ValueError("every slot is fixed: free at least one slot to generate")
        if not 1 <= steps <= 4096:
            raise ValueError(f"steps must lie in [1, 4096], got {steps}")
        ids_t = torch.tensor(list(ids), dtype=torch.long, device=self.device).expand(batch, -1)
        fixed_t = torch.tensor(list(fixed), dtype=torch.bool, device=self.device).expand(batch, -1)
        generator = torch.Generator(self.device).manual_seed(seed)
        return sample_iter(self.model, self.graph, self.noise, batch, len(ids), steps, predictor,
                           fixed_ids=ids_t, fixed_mask=fixed_t, generator=generator, device=self.device)

    def _run(self, ids, fixed, **kwargs) -> List[str]:
        state = None
        for state in self.stream(ids, fixed, **kwargs):
            pass
        return [self.tokenizer.decode(row.tolist()) for row in state.tokens]

    def infill(self, text: str, **kwargs) -> List[str]:
        """Fill the `[[N]]` gaps of `text`: e.g. "Once upon a time [[20]] happily ever after."."""
        return self._run(*self.template(text), **kwargs)

    def canvas(self, prefix: str = "", suffix: str = "", length: Optional[int] = None):
        """Token ids and fixed mask for `length` slots that start with `prefix` and end with `suffix`."""
        length = length or self.length
        head, tail = self.tokenizer.encode(prefix), self.tokenizer.encode(suffix)
        free = length - len(head) - len(tail)
        if free < 1:
            raise ValueError(f"prefix and suffix take {len(head) + len(tail)} tokens: no room in {length}")
        return head + [0] * free + tail, [True] * len(head) + [False] * free + [True] * len(tail)

    def generate(self, prefix: str = "", suffix: str = "", length: Optional[int] = None, **kwargs) -> List[str]:
        """Unconditional (no prefix or suffix), prefix-, suffix- or both-conditioned samples of `length` tokens."""
        return self._run(*self.canvas(prefix, suffix, length), **kwargs)

    def score(self, text: str, points: int = 64, seed: int = 0) -> Score:
        """ELBO of `text` (an upper bound on its negative log-likelihood) and each token's share of it."""
        ids = self.tokenizer.encode(text)
        if not ids:
            raise ValueError("nothing to score: the text is empty")
        if len(ids) > self.length:
            raise ValueError(f"the text has {len(ids)} tokens; the model takes at most {self.length}")
        x0 = torch.tensor([ids], device=self.device)
        generator = torch.Generator(self.device).manual_seed(seed)
        nats = elbo(self.model, self.graph, self.noise, x0, points=points, generator=generator)[0].double()
        return Score(self.tokenizer.pieces(ids), nats.tolist(), float(nats.sum()), float(nats.mean().exp()))
