"""`python -m evaluation likelihood`: a model's perplexity on text, with the paper's protocol.

Each source (a named zero-shot set, `hf:...`, or a file: `text.py`) becomes blocks of the model's
length, scored in batches by the model's objective (`objectives.py`): a SEDD model's ELBO bound
(`sedd_core.likelihood.elbo`: quadrature in t with --points nodes, or Monte Carlo; one draw of x_t
per node and block, from one generator seeded with --seed and used batch after batch), or an AR
baseline's exact NLL. --repeats R estimates the ELBO R times with fresh randomness; the figure is
their mean.

Errors, in nats per token: `stderr_blocks`, the standard error of the mean over blocks, holds the
Monte Carlo noise too, so it bounds the Monte Carlo error from above; with R >= 2, `stderr_mc` is the
Monte Carlo error itself, from the spread of each block's R estimates. An exact figure has none.
"""
import math
import re
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from .text import blocks, documents
from training.objectives import load
from .report import table, write


def measure(loaded, x0: torch.Tensor, batch_size: int, repeats: int, seed: int, device, desc: str = "") -> torch.Tensor:
    """Nats per token (R, N, L) float64 of blocks x0 (N, L); R = 1 for an exact objective."""
    repeats = 1 if loaded.objective.exact else repeats
    generator = torch.Generator(device).manual_seed(seed)
    runs = []
    with tqdm(total=repeats * len(x0), desc=desc or "blocks", unit="block", dynamic_ncols=True) as bar:
        for _ in range(repeats):
            rows = []
            for batch in x0.split(batch_size):
                rows.append(loaded.objective.nats(loaded.model, batch.to(device), generator).double().cpu())
                bar.update(len(batch))
            runs.append(torch.cat(rows))
    return torch.stack(runs)


def summarize(nats: torch.Tensor, exact: bool) -> dict:
    """The figure and its errors from nats per token (R, N, L)."""
    R, N, L = nats.shape
    per_block = nats.mean(-1)  # (R, N)
    mean = per_block.mean().item()
    block_means = per_block.mean(0)  # (N,)
    stderr_blocks = block_means.std().item() / math.sqrt(N) if N > 1 else math.nan
    if exact:
        stderr_mc = 0.0
    else:
        stderr_mc = math.sqrt(per_block.var(0).sum().item() / R) / N if R > 1 else None
    return {"blocks": N, "length": L, "tokens": N * L, "repeats": R, "nats_per_token": mean,
            "perplexity": math.exp(mean), "stderr_blocks": stderr_blocks, "stderr_mc": stderr_mc}


def save_tokens(path, x0: torch.Tensor, nats: torch.Tensor):
    """Per-token results: ids (N, L) and nats (N, L) (the mean of the repeats), float32, in one .npz."""
    np.savez_compressed(path, ids=x0.numpy().astype(np.int32), nats=nats.mean(0).numpy().astype(np.float32))


def row(label: str, r: dict, exact: bool) -> list:
    """A markdown table row: source, blocks, measure, nats per token, perplexity, errors."""
    def err(v):
        return "—" if v is None or math.isnan(v) else f"± {v:.4f}"

    if exact:
        return [label, f"{r['blocks']:,} × {r['length']}", "exact NLL", f"{r['nats_per_token']:.4f}",
                f"{r['perplexity']:.2f}", "exact", err(r["stderr_blocks"])]
    band = r["perplexity"] * (r["stderr_mc"] if r["stderr_mc"] is not None else r["stderr_blocks"])
    return [label, f"{r['blocks']:,} × {r['length']}", "ELBO bound", f"{r['nats_per_token']:.4f}",
            f"≤ {r['perplexity']:.2f} (± {band:.2f})", err(r["stderr_mc"]), err(r["stderr_blocks"])]


HEADER = ["data", "blocks × length", "measure", "nats / token", "perplexity", "± Monte Carlo", "± over blocks"]


def run(args, command: str):
    """The sub-command: every source's figure, a table, the per-token files."""
    loaded = load(args.model, args.device, args.points, args.method, args.precision)
    exact = loaded.objective.exact
    sources = [documents(s) for s in args.data]  # every source read before any compute
    out, rows, results = Path(args.out), [], {}
    for label, docs in sources:
        x0 = blocks(loaded.tokenizer, docs, loaded.length, args.blocks, label)
        nats = measure(loaded, x0, args.batch_size, args.repeats, args.seed, args.device, label)
        r = summarize(nats, exact)
        out.mkdir(parents=True, exist_ok=True)
        tokens_file = out / f"likelihood-{re.sub(r'[^A-Za-z0-9._@-]+', '_', label).strip('_')[-80:]}.npz"
        save_tokens(tokens_file, x0, nats)
        results[label] = r | {"tokens_file": tokens_file.name}
        rows.append(row(label, r, exact))
    setting = ("exact next-token NLL" if exact else
               f"ELBO bound, {args.method} in t with {args.points} points, {args.repeats} repeat(s), seed {args.seed}")
    payload = {"model": args.model or "bundled", "measure": setting, "batch_size": args.batch_size, "results": results}
    notes = ("Perplexity = exp(nats per token). ELBO figures bound the perplexity from above. ± Monte Carlo: the "
             "estimator's own error (from --repeats >= 2); ± over blocks: the standard error over blocks, which holds "
             "the Monte Carlo noise too and so bounds it. Errors are in nats per token; the perplexity's ± is "
             "perplexity × that error.")
    print(write(out, "likelihood", f"Likelihood of {args.model or 'the bundled model'}: {setting}",
                command, table(HEADER, rows), payload, notes))
