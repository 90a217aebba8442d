"""`python -m evaluation mauve`: MAUVE (Pillutla et al., 2021) of prompted generations.

Prompts are blocks of the model's length cut from --data (`text.py`): each block's first
--prompt-tokens tokens are held fixed and the model fills the rest (each sampler run as in `quality`);
the reference is each block's true continuation. Both sets of continuations, as text, are featurised
by --featurizer (a judge: its last layer at the last token, what MAUVE does with GPT-2 large) and
compared by the optional `mauve-text` package (`mauve.compute_mauve` on the features); without it
the sub-command stops at once with a one-line message.
"""
import importlib
from pathlib import Path

import torch
from tqdm import tqdm

from . import judge as judging
from .quality import draw, plan, predictors, sedd_pipeline, unigram_entropy
from .text import blocks, documents
from .judge import load_judge
from .report import table, write


def require_mauve():
    """The `mauve` module, or an ImportError that says how to get it."""
    try:
        return importlib.import_module("mauve")
    except ImportError as err:
        raise ImportError("the mauve sub-command needs the mauve-text package, which is not installed: "
                          "pip install mauve-text") from err


def featurize(featurizer, tokenizer, continuations: torch.Tensor, batch_size: int):
    """Features (N, D) of continuations ids (N, C) of the model's `tokenizer`, and their texts."""
    texts = [tokenizer.decode(r.tolist()) for r in continuations]
    seqs, _ = judging.judge_ids(featurizer, tokenizer, continuations, texts)
    return judging.features(featurizer, seqs, batch_size), texts


def score(mauve, human: torch.Tensor, generated: torch.Tensor, seed: int, device) -> dict:
    """MAUVE of generated features (N, D) against human ones (N, D)."""
    out = mauve.compute_mauve(p_features=human.numpy(), q_features=generated.numpy(), seed=seed, verbose=False,
                              device_id=(device.index or 0) if device.type == "cuda" else -1)
    return {"mauve": float(out.mauve), "frontier_integral": float(getattr(out, "frontier_integral", float("nan")))}


HEADER = ["sampler", "steps", "prompts", "prompt tokens", "MAUVE", "unigram entropy"]


def run(args, command: str):
    """The sub-command: MAUVE of every sampler run against the human continuations, a table."""
    module = require_mauve()  # before anything is loaded
    pipe = sedd_pipeline(args)
    featurizer = load_judge(args.featurizer, args.device)
    label, docs = documents(args.data)
    x0 = blocks(pipe.tokenizer, docs, pipe.length, args.samples, label)
    p = args.prompt_tokens
    if not 0 < p < pipe.length:
        raise ValueError(f"--prompt-tokens must lie between 1 and {pipe.length - 1}, got {p}")
    human, _ = featurize(featurizer, pipe.tokenizer, x0[:, p:], args.judge_batch_size)
    rows, results = [], []
    for spec in tqdm(plan(predictors(pipe, args.predictors), sorted(set(args.steps))), desc="sampler runs"):
        ids, _, _ = draw(pipe, spec, len(x0), pipe.length, args.batch_size, args.seed, prefix=x0[:, :p])
        generated, _ = featurize(featurizer, pipe.tokenizer, ids[:, p:], args.judge_batch_size)
        entropy = unigram_entropy(ids[:, p:]).mean().item()
        r = {"label": spec.label, "steps": spec.steps, "entropy": entropy} | score(
            module, human, generated, args.seed, torch.device(args.device))
        results.append(r)
        rows.append([spec.label, spec.steps or "—", len(x0), p, f"{r['mauve']:.4f}", f"{entropy:.3f}"])
    human_entropy = unigram_entropy(x0[:, p:]).mean().item()
    rows.append([f"human continuations ({label})", "—", len(x0), p, "—", f"{human_entropy:.3f}"])
    payload = {"model": args.model or "bundled", "featurizer": featurizer.name, "data": label, "prompts": len(x0),
               "prompt_tokens": p, "seed": args.seed, "results": results, "human_entropy": human_entropy}
    print(write(Path(args.out), "mauve", f"MAUVE of {args.model or 'the bundled model'} on {label}", command,
                table(HEADER, rows), payload))
