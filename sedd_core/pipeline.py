"""The high-level object: a model with its tokenizer; generate, infill, stream, rank and score text.

A canvas is (ids, fixed, anchors): token ids and fixed flags per slot, and anchored slots
{position: (side, text)} (free slots whose token must start or end with the text; see template.py).
Every public method checks its arguments first (`checks.py`): those messages are the contract the
editor and the CLI show as they are. The network runs at the pipeline's `precision` (`precision.py`):
`self.model` stays the fp32 model `load_model` returns; `self.scorer` (a `Network`) is what samples and
scores, and the methods' `deadline=` stops a request before a network call that would start late.
"""
import copy
import hashlib
import json
import time
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import torch

from . import checks, samplers
from .checkpoint import load_model, read_card, read_config, resolve
from .controls import Controls
from .likelihood import conditional_elbo, elbo
from . import precision as precisions
from .samplers import Fixed, SampleState, Settings, Start, final, sample_iter
from .template import Anchor, parse
from .tokenizer import TextTokenizer

Anchors = Dict[int, Tuple[str, str]]
Canvas = Tuple[List[int], List[bool], Anchors]


class TimeUp(ValueError):
    """A request ran past its deadline; raised before the network call that would have started late."""


class Network:
    """The score network as inference calls it: at a precision ("auto", "fp32", "bf16"; for bf16 a
    `precisions.bf16_copy` of the model run under autocast), returning float32 log-scores, and keeping
    the model's sampler attributes. `until(when)` is the same network refusing, with `TimeUp`, to
    start a call after `when` (a time.monotonic() value): a request stops at most one call late."""

    def __init__(self, model: torch.nn.Module, precision: str = "auto"):
        self.device = next(model.parameters()).device
        self.precision = precisions.resolve(precision, self.device)
        self.model = precisions.bf16_copy(model) if self.precision == "bf16" else model
        self.selects_rows = getattr(model, "selects_rows", False)
        self.time_independent = getattr(model, "time_independent", False)
        self.when = None

    def until(self, when: Optional[float]) -> "Network":
        timed = copy.copy(self)
        timed.when = when
        return timed

    def __call__(self, *args, **kwargs):
        if self.when is not None and time.monotonic() > self.when:
            raise TimeUp("the request ran past its time limit and was stopped")
        with precisions.autocast(self.precision, self.device):
            return self.model(*args, **kwargs).float()


@dataclass
class Ranked:
    """One candidate fill of a canvas, scored by the model: the conditional ELBO of its free slots given
    the fixed ones, in nats per free slot (lower is more likely), with its Monte Carlo error."""

    index: int  # its row among the candidates
    ids: List[int]
    text: str
    slots: int
    nats_per_slot: float
    stderr: float


@dataclass
class Fill:
    """The best fill found for one gap length (gap_search), scored as `Ranked` is."""

    length: int
    ids: List[int]
    text: str
    nats_per_slot: float
    stderr: float


@dataclass
class Score:
    """The ELBO of one text: total nats, per-token nats, and the perplexity bound exp(ELBO / L)."""

    tokens: List[str]
    nats: List[float]
    total: float
    perplexity: float


class SEDDPipeline:
    def __init__(self, model, graph, noise, tokenizer: TextTokenizer, config, device="cpu", name: str = "custom",
                 precision: str = "auto", card: Optional[str] = None):
        self.model, self.graph, self.noise, self.name, self.card = model, graph, noise, name, card
        self.scorer = Network(model, precision)  # the network at the resolved precision: "fp32" or "bf16"
        self.precision = self.scorer.precision
        self.tokenizer, self.config, self.device = tokenizer, config, torch.device(device)
        if tokenizer.vocab_size > config.tokens:
            raise ValueError(f"tokenizer has {tokenizer.vocab_size} tokens but the model only {config.tokens}")
        self.allowed = lru_cache(maxsize=256)(self._allowed)

    @classmethod
    def from_pretrained(cls, path_or_repo_id=None, device: Optional[str] = None,
                        precision: str = "auto") -> "SEDDPipeline":
        """Load a folder, a hub id, or (None) the bundled model; on CUDA when available unless `device` says;
        `precision` "auto" (bf16 where the hardware multiplies it natively), "fp32" or "bf16"."""
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        folder = resolve(path_or_repo_id)
        model, graph, noise = load_model(folder, device)
        local = path_or_repo_id is None or Path(path_or_repo_id).expanduser().is_dir()
        name = folder.name if local else str(path_or_repo_id)  # a folder's name, or the hub id
        return cls(model, graph, noise, TextTokenizer.load(folder), read_config(folder), device, name, precision,
                   read_card(folder))

    @cached_property
    def parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    @property
    def length(self) -> int:
        return self.config.model.length

    @property
    def predictors(self) -> tuple:
        """The names of the samplers this model supports (samplers.SAMPLERS), the default first."""
        return samplers.available(self.graph.absorb)

    # What an editor needs, as named operations: the mask rule, pieces and text of states, the model's
    # identity, branching. (The editor reads none of graph, config or the raw tokenizer.)

    @property
    def absorbing(self) -> bool:
        """Whether undecided slots are masks (the absorbing graph), rather than noise (uniform)."""
        return self.graph.absorb

    @property
    def mask_id(self) -> int:
        """The id a sampler state holds at an undecided slot (absorbing graph): the vocabulary's size."""
        return self.config.tokens

    def is_mask(self, token: int) -> bool:
        """The canvas's mask rule: an id at or past the vocabulary is an undecided slot."""
        return token >= self.config.tokens

    def pieces(self, tokens: Sequence[int], mask: str = "") -> List[str]:
        """The text of each id of a state; `mask` for the undecided slots."""
        text = self.tokenizer.pieces([0 if self.is_mask(t) else t for t in tokens])
        return [mask if self.is_mask(t) else p for t, p in zip(tokens, text)]

    def decode(self, tokens: Sequence[int], mask: str = "\u2591") -> str:
        """A state's text: decoded as one text when no slot is undecided, else piece by piece with `mask`."""
        tokens = list(tokens)
        if not any(map(self.is_mask, tokens)):
            return self.tokenizer.decode(tokens)
        return "".join(self.pieces(tokens, mask))

    @cached_property
    def identity(self) -> dict:
        """The model's name and the SHA-256 of its config: what an exported run says it was made with."""
        config = json.dumps(self.config.to_dict(), sort_keys=True).encode()
        return {"name": self.name, "config_sha256": hashlib.sha256(config).hexdigest()}

    @property
    def summary(self) -> str:
        """The model in a few words, e.g. '128 slots, 4,096 tokens, absorb graph'."""
        return f"{self.length} slots, {self.config.tokens:,} tokens, {self.config.graph} graph"

    @property
    def lead(self) -> Optional[str]:
        """What to expect from the model in one paragraph: the first one of its card under the title."""
        paragraphs = [p for p in (self.card or "").split("\n\n") if p.strip() and not p.lstrip().startswith("#")]
        return " ".join(paragraphs[0].split()) if paragraphs else None

    def branch(self, ids, fixed, anchors, state: Sequence[int], t: float, batch: int = 1, **sampling):
        """Continue a run from an intermediate `state` (L,) of it (masks at undecided slots; the canvas's
        changes by hand included) at its diffusion time `t`, as `batch` new candidates: the stream.
        For the absorbing graph this is an exact continuation of the reverse process."""
        if self.absorbing and not any(map(self.is_mask, state)):
            raise ValueError("nothing is left to decide at this frame: scrub to an earlier one, or mask some slots first")
        return self.stream(ids, fixed, anchors, batch=batch, init=[list(state)] * batch, t_start=max(t, 1e-4),
                           **sampling)

    @cached_property
    def max_chars(self) -> int:
        """More characters than this never fit in the model's length (no token spells more than the
        longest vocabulary entry): text is refused past it before it is tokenised."""
        return self.length * max(map(len, self.tokenizer.tokenizer.get_vocab()))

    @cached_property
    def vocabulary(self) -> List[str]:
        """The text of every token id."""
        return self.tokenizer.pieces(range(self.config.tokens))

    def _allowed(self, side: str, text: str) -> torch.Tensor:
        """(tokens,) bool: the tokens whose text starts ("start") or ends ("end") with `text`."""
        match = str.startswith if side == "start" else str.endswith
        allowed = torch.tensor([match(piece, text) for piece in self.vocabulary], dtype=torch.bool)
        if not allowed.any():
            raise ValueError(f"no token {side}s with {text!r}")
        return allowed

    def encode(self, text, name: str = "the text") -> List[int]:
        """Token ids of `text`, which must be valid Unicode that the tokenizer spells back exactly."""
        ids = self.tokenizer.encode(checks.text(name, text, self.max_chars))
        if self.tokenizer.decode(ids) != text:
            raise ValueError(f"the tokenizer cannot spell {name} exactly: remove unusual characters")
        return ids

    def compose(self, parts: Sequence) -> Canvas:
        """The canvas of fixed texts (str), anchors (template.Anchor) and runs of free slots (anything
        else: the number of slots), in order. Slots are counted before anything is built. A text that
        ends in one space before a gap leaves that space to the gap: the tokenizer's words carry their
        leading space, so the gap's first token does, and no fixed slot is a lone space."""
        pieces = []  # token ids (fixed), a gap's size, or (side, text) for one anchored slot
        parts = [p[:-1] if isinstance(p, str) and p.endswith(" ") and not p.endswith("  ") and n + 1 < len(parts)
                 and not isinstance(parts[n + 1], (str, Anchor)) else p for n, p in enumerate(parts)]
        for p in parts:
            if isinstance(p, Anchor):  # the word's last (first) token becomes the anchored slot
                ids = self.encode(p[1])
                rest, edge = (ids[:-1], ids[-1]) if p[0] == "start" else (ids[1:], ids[0])
                anchor = (p[0], self.tokenizer.pieces([edge])[0])
                pieces += [rest, anchor] if p[0] == "start" else [anchor, rest]
            else:
                pieces.append(self.encode(p) if isinstance(p, str) else checks.whole("a gap", p, 1, self.length))
        slots = sum(len(p) if isinstance(p, list) else 1 if isinstance(p, tuple) else p for p in pieces)
        if slots > self.length:
            raise ValueError(f"that makes {slots:,} slots; the model takes at most {self.length}")
        ids, fixed, anchors = [], [], {}
        for p in pieces:
            if isinstance(p, tuple):
                anchors[len(ids)] = p
            n = len(p) if isinstance(p, list) else 1 if isinstance(p, tuple) else p
            ids += p if isinstance(p, list) else [0] * n
            fixed += [isinstance(p, list)] * n
        return ids, fixed, anchors

    def template(self, text: str) -> Canvas:
        """The canvas of text in which `[[N]]` marks N free slots and a word glued to a gap anchors it."""
        checks.text("the template", text, self.max_chars + 16 * self.length)  # room for the [[N]] marks
        return self.compose(parse(text))

    def check_canvas(self, ids: Sequence, fixed: Sequence, anchors: Optional[Anchors] = None) -> Canvas:
        """The canvas as the samplers take it: ids (L,) with free slots' ids set to 0, fixed flags (L,)."""
        fixed = checks.flags("fixed", fixed)
        if not isinstance(ids, (list, tuple)) or len(ids) != len(fixed):
            raise ValueError(f"ids must be a list as long as fixed ({len(fixed)})")
        if not 0 < len(ids) <= self.length:
            raise ValueError(f"the canvas must have 1 to {self.length} slots, got {len(ids)}")
        for n, (i, f) in enumerate(zip(ids, fixed)):  # their range: where they are used (sample_iter, rank)
            if f and (isinstance(i, bool) or not isinstance(i, int)):
                raise ValueError(f"slot {n + 1} is fixed but holds no valid token id (got {i!r}): free it or delete it")
        if all(fixed):
            raise ValueError("every slot is fixed: free at least one slot to generate")
        anchors = dict(anchors or {})
        for n, anchor in anchors.items():
            if not (isinstance(n, int) and 0 <= n < len(ids) and not fixed[n] and isinstance(anchor, (list, tuple))
                    and len(anchor) == 2 and anchor[0] in ("start", "end") and isinstance(anchor[1], str)
                    and anchor[1]):
                raise ValueError(f"anchor {n!r}: {anchor!r} must anchor a free slot with ('start' or 'end', text)")
        return [i if f else 0 for i, f in zip(ids, fixed)], fixed, anchors

    def stream(self, ids: Sequence[int], fixed: Sequence[bool], anchors: Optional[Anchors] = None, *,
               settings: Optional[Settings] = None, seed: int = 0, batch: int = 1,
               init: Optional[Sequence[Sequence[int]]] = None, t_start: float = 1.0, deadline: Optional[float] = None,
               **sampling) -> Iterator[SampleState]:
        """Sample `batch` candidates for one canvas: slots where `fixed` holds keep `ids`, anchored
        slots keep to their anchor; yields every state. How: `settings` (see `settings`), or its
        keyword arguments `sampling` (predictor, steps, controls, the sampler's options). `init`
        (batch, L) and `t_start` continue from an intermediate state (a frame of an earlier run)
        instead of from the start. `deadline` (time.monotonic()): no network call starts after it
        (TimeUp). Every argument is checked before this returns."""
        ids, fixed, anchors = self.check_canvas(ids, fixed, anchors)
        if settings is not None and sampling:
            raise ValueError(f"give settings or {', '.join(sampling)}, not both")
        settings = self.settings(**sampling) if settings is None else settings
        batch, generator = checks.batch(batch), torch.Generator(self.device).manual_seed(checks.seed(seed))
        allowed = {n: self.allowed(*a) for n, a in anchors.items()}
        held = Fixed(torch.tensor(ids, device=self.device).expand(batch, -1),
                     torch.tensor(fixed, device=self.device).expand(batch, -1), allowed)
        start = Start(None if init is None else torch.as_tensor(init, dtype=torch.long), t_start)
        return sample_iter(self.scorer.until(deadline), self.graph, self.noise, (batch, len(ids)), settings, held, start,
                           generator)

    def settings(self, predictor: Optional[str] = None, steps: int = checks.DEFAULT_STEPS,
                 controls: Optional[Controls] = None, **options) -> Settings:
        """How a run samples, checked once (samplers.Settings): the sampler (default: this model's
        first), its steps, the sampling controls and the sampler's own options."""
        return Settings(self.predictors[0] if predictor is None else predictor, steps,
                        Controls() if controls is None else controls, options)

    def _run(self, ids, fixed, anchors=None, **kwargs) -> List[str]:
        return [self.tokenizer.decode(row.tolist()) for row in final(self.stream(ids, fixed, anchors, **kwargs)).tokens]

    def infill(self, text: str, **kwargs) -> List[str]:
        """Fill the `[[N]]` gaps of `text`: e.g. "Once upon a time [[20]] happily ever after."."""
        return self._run(*self.template(text), **kwargs)

    def canvas(self, prefix: str = "", suffix: str = "", length: Optional[int] = None) -> Canvas:
        """The canvas of `length` slots (default: the model's) that start with `prefix` and end with `suffix`."""
        length = self.length if length is None else checks.whole("length", length, 1, self.length)
        head, tail = self.encode(prefix, "the prefix"), self.encode(suffix, "the suffix")
        free = length - len(head) - len(tail)
        if free < 1:
            raise ValueError(f"prefix and suffix take {len(head) + len(tail)} tokens: no room in {length}")
        return self.compose(([prefix] if prefix else []) + [free] + ([suffix] if suffix else []))

    def generate(self, prefix: str = "", suffix: str = "", length: Optional[int] = None, **kwargs) -> List[str]:
        """Unconditional (no prefix or suffix), prefix-, suffix- or both-conditioned samples of `length` tokens."""
        return self._run(*self.canvas(prefix, suffix, length), **kwargs)

    def rank(self, ids: Sequence[int], fixed: Sequence[bool], candidates, points: int = 64,
             seed: int = 0, deadline: Optional[float] = None) -> List[Ranked]:
        """Candidates (C, L) for one canvas, best first by the model's own conditional score: the ELBO of
        their free slots given the fixed ones, in nats per free slot, with its Monte Carlo error."""
        ids, fixed, _ = self.check_canvas(ids, fixed)
        rows = checks.rows_of_ids("candidates", candidates, checks.MAX_BATCH, len(ids), self.config.tokens).to(self.device)
        free = ~torch.tensor(fixed, device=self.device).expand_as(rows)
        held = torch.tensor(ids, device=self.device).expand_as(rows)
        if (rows != held)[~free].any():
            raise ValueError("the candidates must keep the canvas's fixed tokens: they are not fills of this canvas")
        points = checks.whole("points", points, 2, checks.MAX_POINTS)
        generator = torch.Generator(self.device).manual_seed(checks.seed(seed))
        nats, stderr = conditional_elbo(self.scorer.until(deadline), self.graph, self.noise, rows, free, points, generator=generator)
        slots = int(free[0].sum())
        out = [Ranked(n, row, self.tokenizer.decode(row), slots, float(nats[n]) / slots, float(stderr[n]) / slots)
               for n, row in enumerate(rows.tolist())]
        return sorted(out, key=lambda r: r.nats_per_slot)

    def gap_search(self, before: str, after: str, lengths: Sequence[int], seed: int = 0, tries: int = 2,
                   points: int = 32, deadline: Optional[float] = None, settings: Optional[Settings] = None,
                   **sampling) -> List[Fill]:
        """For a gap of unknown length between `before` and `after`: for each length, sample `tries`
        fills in one batch (with `settings`, or its keyword arguments `sampling`, as `stream`) and keep
        the best by the conditional ELBO; all lengths, best first."""
        lengths = checks.whole_list("gap lengths", "a gap length", lengths, 1, self.length, checks.MAX_LENGTHS)
        settings = self.settings(**sampling) if settings is None else settings
        out = []
        for n in lengths:
            ids, fixed, anchors = self.compose([p for p in (before, n, after) if p != ""])
            state = final(self.stream(ids, fixed, anchors, settings=settings, seed=seed, batch=tries, deadline=deadline))
            best = self.rank(ids, fixed, state.tokens, points=points, seed=seed, deadline=deadline)[0]
            out.append(Fill(n, best.ids, best.text, best.nats_per_slot, best.stderr))
        return sorted(out, key=lambda r: r.nats_per_slot)

    def score(self, text: str, points: int = 64, seed: int = 0, deadline: Optional[float] = None) -> Score:
        """ELBO of `text` (an upper bound on its negative log-likelihood) and each token's share of it."""
        ids = self.encode(text)
        if not ids:
            raise ValueError("nothing to score: the text is empty")
        if len(ids) > self.length:
            raise ValueError(f"the text has {len(ids)} tokens; the model takes at most {self.length}")
        points = checks.whole("points", points, 1, checks.MAX_POINTS)
        generator = torch.Generator(self.device).manual_seed(checks.seed(seed))
        x0 = torch.tensor([ids], device=self.device)
        nats = elbo(self.scorer.until(deadline), self.graph, self.noise, x0, points=points, generator=generator)[0].double()
        return Score(self.tokenizer.pieces(ids), nats.tolist(), float(nats.sum()), float(nats.mean().exp()))
