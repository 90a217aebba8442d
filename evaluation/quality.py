"""`python -m evaluation quality`: generative perplexity and unigram entropy of samples, against steps.

For every predictor of the model (`pipe.predictors`: first_hitting, analytic, euler, ... for an
absorbing model) and every step count (first_hitting takes none: it runs once, one network call per
slot), draw N unconditional sequences (batch after batch from one generator seeded with --seed; the
samplers draw every token in float64), score them with a judge (`judge.py`) and measure each sample's
unigram entropy: the entropy of its token histogram, log V at most for V distinct tokens. A sampler
that loses temperature (float32 categorical draws: Zheng et al., 2024) shows a lower perplexity and a
lower entropy together; held-out text (--reference) gives the data's own figures.

A run is `Spec(predictor, steps, options, controls)`, `options` being the sampler's own (per_call,
remask, ...): a new sampler setting is a new run. The sampling controls (--temperature, --top-k,
--top-p) apply to every run and each sampler option flag to the samplers that have it; --sweep instead runs a grid of them (`SWEEP`) at one step count and draws the quality/diversity
frontier: generative perplexity against unigram entropy, one point per setting, the exact ones marked.
"""
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Sequence

import torch
from tqdm import tqdm

from sedd_core import SEDDPipeline
from sedd_core.checks import DEFAULT_STEPS
from sedd_core.cli import given_options
from sedd_core.controls import Controls
from sedd_core.samplers import SAMPLERS, Fixed, Settings, final, sample_iter

from . import judge as judging
from .text import blocks, documents
from .judge import load_judge
from training.objectives import load
from .report import frontier_figure, steps_figure, table, write

SWEEP = [  # (predictor, controls and options) of the frontier: the exact samplers first, then each control alone
    ("first_hitting", {}), ("analytic", {}),
    *[("first_hitting", {"temperature": t}) for t in (0.6, 0.8, 0.9)],
    *[("first_hitting", {"top_p": p}) for p in (0.8, 0.9, 0.95)],
    *[("first_hitting", {"top_k": k}) for k in (10, 50)],
    *[("confidence", {"confidence": c}) for c in ("max", "entropy", "margin")],
    ("confidence", {"schedule": "cosine"}), ("confidence", {"temperature": 0.8}),
    ("analytic", {"remask": 0.05}), ("analytic", {"remask": 0.05, "temperature": 0.8}),
]


@dataclass
class Spec:
    predictor: str
    steps: Optional[int]  # None for a stepless predictor
    options: dict = field(default_factory=dict)  # the sampler's own options
    controls: Controls = Controls()

    @property
    def settings(self) -> Settings:
        return Settings(self.predictor, self.steps or DEFAULT_STEPS, self.controls, self.options)

    @property
    def label(self) -> str:
        extra = [f"{k}={v}" for k, v in self.options.items()]
        extra += [f"{k}={getattr(self.controls, k)}" for k in ("temperature", "top_k", "top_p")
                  if getattr(self.controls, k) != getattr(Controls(), k)]
        return self.predictor + (f" ({', '.join(extra)})" if extra else "")

    @property
    def exact(self) -> bool:
        return self.settings.exact


def spec(predictor: str, steps: Optional[int], values: dict) -> Spec:
    """The run of `predictor` with the sampling controls and the options of `values` that it has."""
    controls = {k: v for k, v in values.items() if k in Controls.__dataclass_fields__}
    own = {k: v for k, v in values.items() if k in SAMPLERS[predictor].options}
    return Spec(predictor, steps if SAMPLERS[predictor].takes_steps else None, own, Controls(**controls))


def plan(predictors: Sequence[str], steps: Sequence[int], values: Optional[dict] = None) -> List[Spec]:
    """Every predictor at every step count (a stepless one once), with the same controls and options
    (each sampler takes the options it has)."""
    return [spec(p, s, values or {}) for p in predictors for s in (steps if SAMPLERS[p].takes_steps else steps[:1])]


def sweep(predictors: Sequence[str], steps: int) -> List[Spec]:
    """The frontier's grid (`SWEEP`) at one step count, for the predictors the model has."""
    return [spec(p, steps, values) for p, values in SWEEP if p in predictors]


def values_of(args) -> dict:
    """The sampling controls and sampler options the flags ask for."""
    controls = Controls(temperature=args.temperature, top_k=args.top_k, top_p=args.top_p)
    return {k: v for k, v in vars(controls).items() if v != getattr(Controls(), k)} | given_options(args)


def draw(pipe, spec: Spec, n: int, length: int, batch_size: int, seed: int, prefix: Optional[torch.Tensor] = None):
    """(samples (n, length) on the CPU, mean network calls per batch, seconds) of one run. `prefix`
    (n, P) holds each row's fixed first P tokens (prompted generation)."""
    generator = torch.Generator(pipe.device).manual_seed(seed)
    out, calls, started = [], [], time.perf_counter()
    for start in range(0, n, batch_size):
        b = min(batch_size, n - start)
        held = None
        if prefix is not None:
            fixed = torch.zeros(b, length, dtype=torch.bool)
            fixed[:, :prefix.shape[1]] = True
            ids = torch.zeros(b, length, dtype=torch.long)
            ids[:, :prefix.shape[1]] = prefix[start:start + b]
            held = Fixed(ids, fixed)
        state = final(sample_iter(pipe.scorer, pipe.graph, pipe.noise, (b, length), spec.settings, held,
                                  generator=generator))
        out.append(state.tokens.cpu())
        calls.append(state.calls)
    return torch.cat(out), sum(calls) / len(calls), time.perf_counter() - started


def unigram_entropy(ids: torch.Tensor) -> torch.Tensor:
    """Entropy in nats (N,) of each row's token histogram, ids (N, L)."""
    out = []
    for row in ids:
        p = torch.bincount(row).double()
        p = p[p > 0] / len(row)
        out.append(-(p * p.log()).sum())
    return torch.stack(out)


def mean_and_error(values: torch.Tensor) -> tuple:
    n = len(values)
    return values.mean().item(), (values.std().item() / math.sqrt(n) if n > 1 else math.nan)


def judged(judge, tokenizer, ids: torch.Tensor, batch_size: int) -> dict:
    """The judge's figures and the entropy of samples ids (N, L) of the model's `tokenizer`."""
    texts = [tokenizer.decode(r.tolist()) for r in ids]
    seqs, route = judging.judge_ids(judge, tokenizer, ids, texts)
    sums, counts = judging.score(judge, seqs, batch_size)
    scored = counts > 0
    ppl = (sums[scored] / counts[scored]).exp()  # (n,) each sample's perplexity
    entropy = unigram_entropy(ids)
    gen_ppl, gen_ppl_stderr = mean_and_error(ppl)
    ent, ent_stderr = mean_and_error(entropy)
    return {"gen_ppl": gen_ppl, "gen_ppl_stderr": gen_ppl_stderr,
            "gen_ppl_pooled": math.exp(sums.sum().item() / max(1, counts.sum().item())),
            "entropy": ent, "entropy_stderr": ent_stderr, "judge_reads": route, "scored_tokens": int(counts.sum()),
            "per_sample_ppl": [round(v, 4) for v in ppl.tolist()],
            "per_sample_entropy": [round(v, 5) for v in entropy.tolist()], "texts": texts}


HEADER = ["sampler", "steps", "network calls", "gen. perplexity", "pooled", "unigram entropy", "seconds"]


def row(label: str, steps, r: dict) -> list:
    calls = "—" if r.get("calls") is None else f"{r['calls']:.0f}"
    seconds = "—" if r.get("seconds") is None else f"{r['seconds']:.1f}"
    return [label, "—" if steps is None else steps, calls, f"{r['gen_ppl']:.2f} ± {r['gen_ppl_stderr']:.2f}",
            f"{r['gen_ppl_pooled']:.2f}", f"{r['entropy']:.3f} ± {r['entropy_stderr']:.3f}", seconds]


def sedd_pipeline(args) -> SEDDPipeline:
    loaded = load(args.model, args.device, precision=args.precision)
    if loaded.pipe is None:
        raise ValueError(f"{args.model} is an AR baseline; this sub-command samples SEDD models")
    return loaded.pipe


def predictors(pipe, asked):
    unknown = [p for p in asked or () if p not in pipe.predictors]
    if unknown:
        raise ValueError(f"unknown sampler {unknown[0]!r}: this model has {', '.join(pipe.predictors)}")
    return asked or pipe.predictors


def run(args, command: str):
    """The sub-command: every sampler run judged, a table, the figure, the samples."""
    pipe = sedd_pipeline(args)
    judge = load_judge(args.judge, args.device)
    length = args.length or pipe.length
    if length > pipe.length:
        raise ValueError(f"--length {length} is longer than the model's {pipe.length}")
    asked = predictors(pipe, args.predictors)
    runs = sweep(asked, args.steps[0]) if args.sweep else plan(asked, sorted(set(args.steps)), values_of(args))
    reference = None
    if args.reference:
        label, docs = documents(args.reference)
        x0 = blocks(pipe.tokenizer, docs, length, args.samples, label)
        reference = {"source": label, "samples": len(x0)} | judged(judge, pipe.tokenizer, x0, args.judge_batch_size)
    results = []
    for spec in tqdm(runs, desc="sampler runs", dynamic_ncols=True):
        ids, calls, seconds = draw(pipe, spec, args.samples, length, args.batch_size, args.seed)
        options = spec.options | {k: v for k, v in vars(spec.controls).items() if v != getattr(Controls(), k)}
        results.append({"predictor": spec.predictor, "steps": spec.steps, "options": options, "label": spec.label,
                        "exact": spec.exact, "calls": calls, "seconds": seconds}
                       | judged(judge, pipe.tokenizer, ids, args.judge_batch_size))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with (out / "quality_samples.jsonl").open("w", encoding="utf-8") as f:
        for r in results:
            for text, ppl, ent in zip(r.pop("texts"), r["per_sample_ppl"], r["per_sample_entropy"]):
                f.write(json.dumps({"sampler": r["label"], "steps": r["steps"], "gen_ppl": ppl, "entropy": ent,
                                    "text": text}) + "\n")
    rows = [row(r["label"], r["steps"], r) for r in results]
    if reference:
        reference.pop("texts")
        rows.append(row(f"held-out text ({reference['source']})", None, reference))
    held_out = reference and {"ppl": reference["gen_ppl"], "entropy": reference["entropy"]}
    if args.sweep:
        frontier_figure(out / "quality", results, held_out, judge.name, command)
    else:
        series = {}
        for r in results:
            s = series.setdefault(r["label"], {"x": [], "ppl": [], "entropy": [], "stepless": r["steps"] is None})
            s["x"].append(r["calls"] if r["steps"] is None else r["steps"])
            s["ppl"].append(r["gen_ppl"])
            s["entropy"].append(r["entropy"])
        steps_figure(out / "quality", series, held_out, judge.name, command)
    payload = {"model": args.model or "bundled", "judge": judge.name, "samples": args.samples, "length": length,
               "seed": args.seed, "results": results, "reference": reference}
    reads = "reads the sampled ids" if results[0]["judge_reads"] == "ids" else "re-tokenises the text"
    notes = (f"Judge: {judge.name} ({reads}). "
             "Generative perplexity: the mean over samples of exp(mean NLL of every token but the first), ± its "
             "standard error; pooled: exp of the mean NLL over all scored tokens. Unigram entropy: of each sample's "
             "token histogram, mean ± standard error. first_hitting takes no steps: one network call per slot.")
    print(write(out, "quality", f"Sample quality of {args.model or 'the bundled model'}", command,
                table(HEADER, rows), payload, notes))
