"""The high-level object: a model with its tokenizer; generate, infill, stream and score text."""
import re
from dataclasses import dataclass
from functools import cached_property
from typing import Iterator, List, Optional, Sequence, Tuple, Union

import torch

from . import checks
from .checkpoint import load_model, read_config, resolve
from .likelihood import elbo
from .sampling import SampleState, sample_iter
from .tokenizer import TextTokenizer

GAP = re.compile(r"\[\[(\d+)\]\]")  # "[[12]]" in a template stands for 12 free slots
MAX_STEPS, MAX_BATCH, MAX_POINTS = 4096, 64, 4096  # the library's limits (the editor keeps tighter ones)


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

    @cached_property
    def max_chars(self) -> int:
        """More characters than this never fit in the model's length (no token spells more than the
        longest vocabulary entry): text is refused past it before it is tokenised."""
        return self.length * max(map(len, self.tokenizer.tokenizer.get_vocab()))

    def encode(self, text, name: str = "the text") -> List[int]:
        """Token ids of `text`, which must be valid Unicode that the tokenizer spells back exactly."""
        ids = self.tokenizer.encode(checks.text(name, text, self.max_chars))
        if self.tokenizer.decode(ids) != text:
            raise ValueError(f"the tokenizer cannot spell {name} exactly: remove unusual characters")
        return ids

    def compose(self, parts: Sequence[Union[str, int]]) -> Tuple[List[int], List[bool]]:
        """Token ids and fixed flags (L,) of fixed texts (str) and runs of free slots (anything else: the
        number of slots), in order. The slots are counted before anything is built: a huge gap costs nothing."""
        pieces = [self.encode(p) if isinstance(p, str) else checks.whole("a gap", p, 1, self.length) for p in parts]
        slots = sum(len(p) if isinstance(p, list) else p for p in pieces)
        if slots > self.length:
            raise ValueError(f"that makes {slots:,} slots; the model takes at most {self.length}")
        ids, fixed = [], []
        for p in pieces:
            ids += p if isinstance(p, list) else [0] * p
            fixed += [True] * len(p) if isinstance(p, list) else [False] * p
        return ids, fixed

    def template(self, text: str) -> Tuple[List[int], List[bool]]:
        """Token ids and fixed flags (L,) for text in which `[[N]]` marks N free slots."""
        checks.text("the template", text, self.max_chars + 16 * self.length)  # room for the [[N]] marks
        parts, pos = [], 0
        for m in GAP.finditer(text):
            parts += [text[pos:m.start()], int(m.group(1))]
            pos = m.end()
        return self.compose([p for p in parts + [text[pos:]] if p != ""])

    def check_canvas(self, ids: Sequence, fixed: Sequence) -> Tuple[List[int], List[bool]]:
        """The canvas as the samplers take it: ids (L,) with free slots' ids set to 0, fixed flags (L,)."""
        fixed = checks.flags("fixed", fixed)
        if not isinstance(ids, (list, tuple)) or len(ids) != len(fixed):
            raise ValueError(f"ids must be a list as long as fixed ({len(fixed)})")
        if not 0 < len(ids) <= self.length:
            raise ValueError(f"the canvas must have 1 to {self.length} slots, got {len(ids)}")
        for n, (i, f) in enumerate(zip(ids, fixed)):
            if f and (isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < self.config.tokens):
                raise ValueError(f"slot {n + 1} is fixed but holds no valid token id (got {i!r}): free it or delete it")
        if all(fixed):
            raise ValueError("every slot is fixed: free at least one slot to generate")
        return [i if f else 0 for i, f in zip(ids, fixed)], fixed

    def stream(self, ids: Sequence[int], fixed: Sequence[bool], steps: int = 128, predictor: str = "analytic",
               seed: int = 0, batch: int = 1) -> Iterator[SampleState]:
        """Sample `batch` candidates for one canvas: slots where `fixed` holds keep `ids`; yields every state."""
        ids, fixed = self.check_canvas(ids, fixed)
        steps = checks.whole("steps", steps, 1, MAX_STEPS)
        if predictor not in self.predictors:
            raise ValueError(f"unknown sampler {predictor!r}: choose one of {', '.join(self.predictors)}")
        seed = checks.whole("the seed", seed, 0, checks.MAX_SEED)
        batch = checks.whole("batch", batch, 1, MAX_BATCH)
        ids_t = torch.tensor(ids, dtype=torch.long, device=self.device).expand(batch, -1)
        fixed_t = torch.tensor(fixed, dtype=torch.bool, device=self.device).expand(batch, -1)
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
        """Token ids and fixed flags for `length` slots (default: the model's) that start with `prefix`
        and end with `suffix`."""
        length = self.length if length is None else checks.whole("length", length, 1, self.length)
        head, tail = self.encode(prefix, "the prefix"), self.encode(suffix, "the suffix")
        free = length - len(head) - len(tail)
        if free < 1:
            raise ValueError(f"prefix and suffix take {len(head) + len(tail)} tokens: no room in {length}")
        return self.compose(([prefix] if prefix else []) + [free] + ([suffix] if suffix else []))

    def generate(self, prefix: str = "", suffix: str = "", length: Optional[int] = None, **kwargs) -> List[str]:
        """Unconditional (no prefix or suffix), prefix-, suffix- or both-conditioned samples of `length` tokens."""
        return self._run(*self.canvas(prefix, suffix, length), **kwargs)

    def score(self, text: str, points: int = 64, seed: int = 0) -> Score:
        """ELBO of `text` (an upper bound on its negative log-likelihood) and each token's share of it."""
        ids = self.encode(text)
        if not ids:
            raise ValueError("nothing to score: the text is empty")
        if len(ids) > self.length:
            raise ValueError(f"the text has {len(ids)} tokens; the model takes at most {self.length}")
        points = checks.whole("points", points, 1, MAX_POINTS)
        generator = torch.Generator(self.device).manual_seed(checks.whole("the seed", seed, 0, checks.MAX_SEED))
        x0 = torch.tensor([ids], device=self.device)
        nats = elbo(self.model, self.graph, self.noise, x0, points=points, generator=generator)[0].double()
        return Score(self.tokenizer.pieces(ids), nats.tolist(), float(nats.sum()), float(nats.mean().exp()))
