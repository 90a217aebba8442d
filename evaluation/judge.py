"""Judges: causal language models that score generated text (generative perplexity) and featurise it (MAUVE).

`load_judge(spec)` takes a local folder or a hub id. A folder whose config.json says objective "ar"
is our AR baseline (`ar_folder.py`: this repository alone loads it, offline); any other folder, and
any hub id (e.g. `gpt2-large`, the paper's judge), goes through transformers' AutoModelForCausalLM
and AutoTokenizer.

Protocol (the official SEDD code's): the judge scores every token of a sample but the first, each
given the tokens before it; a sample's perplexity is exp(its mean NLL), and the generative
perplexity is the mean of the samples' perplexities. The judge reads the sampled ids when its
vocabulary is the model's (same id, same text), and otherwise the samples' text re-tokenised by its
own tokenizer: ids never cross vocabularies. A sequence longer than the judge's context is scored in
windows of the context overlapping by one token, so every token but the first is scored once. The
AR baseline reads each window after its BOS token, as it was trained.
"""
from pathlib import Path
from typing import Iterator, List, Sequence, Tuple

import torch
import torch.nn.functional as F

from sedd_core.checkpoint import exported

from training.ar import after_bos
from training.ar_folder import is_ar_folder, load_ar


class ARJudge:
    """Our AR baseline folder as a judge."""

    def __init__(self, folder: Path, device):
        self.model, self.tokenizer, cfg = load_ar(folder, device)
        self.name, self.device, self.context = str(folder), torch.device(device), cfg.model.length

    def vocabulary(self) -> dict:
        return self.tokenizer.tokenizer.get_vocab()

    def encode(self, texts: Sequence[str]) -> List[List[int]]:
        return [e.ids for e in self.tokenizer.tokenizer.encode_batch(list(texts), add_special_tokens=False)]

    @torch.no_grad()
    def window_nll(self, ids, mask):  # (B, C) long, (B, C) bool -> NLL of tokens 1..C-1 (B, C - 1), 0 at padding
        logits = self.model(after_bos(ids, self.tokenizer.eos_id))[:, 1:]  # (B, C - 1, V): predicts ids[:, 1:]
        return F.cross_entropy(logits.transpose(1, 2), ids[:, 1:], reduction="none") * mask[:, 1:]

    @torch.no_grad()
    def features(self, ids, mask):  # (B, C), (B, C) -> the last block's output after each row's last token (B, D)
        hidden = self.model.hidden(torch.cat([torch.full_like(ids[:, :1], self.tokenizer.eos_id), ids], 1))[0].float()
        return hidden[torch.arange(len(ids), device=ids.device), mask.sum(1)]  # position i has read BOS and ids[:i]

    @property
    def feature_length(self) -> int:  # BOS and the text fit in the model's length
        return self.context - 1


class HFJudge:
    """A transformers causal LM (and its tokenizer) as a judge."""

    def __init__(self, name: str, device):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        try:
            self.tokenizer = AutoTokenizer.from_pretrained(name)
            self.model = AutoModelForCausalLM.from_pretrained(name).to(device).eval()
        except (OSError, ValueError) as err:  # not found, offline and not cached, or not a causal LM
            raise ValueError(f"cannot load the judge {name!r} through transformers: "
                             f"{' '.join(str(err).split())[:300]}") from err
        config = self.model.config
        self.context = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None) or 1024
        self.name, self.device = name, torch.device(device)

    def vocabulary(self) -> dict:
        return self.tokenizer.get_vocab()

    def encode(self, texts: Sequence[str]) -> List[List[int]]:
        return self.tokenizer(list(texts), add_special_tokens=False, verbose=False)["input_ids"]

    @torch.no_grad()
    def window_nll(self, ids, mask):
        logits = self.model(input_ids=ids, attention_mask=mask.long()).logits[:, :-1].float()  # (B, C - 1, V)
        return F.cross_entropy(logits.transpose(1, 2), ids[:, 1:], reduction="none") * mask[:, 1:]

    @torch.no_grad()
    def features(self, ids, mask):
        out = self.model(input_ids=ids, attention_mask=mask.long(), output_hidden_states=True)
        return _at_last(out.hidden_states[-1].float(), mask)

    @property
    def feature_length(self) -> int:
        return self.context


def _at_last(hidden, mask):  # (B, C, D), (B, C) -> each row's vector at its last real token (B, D)
    last = mask.long().sum(1) - 1
    return hidden[torch.arange(len(hidden), device=hidden.device), last]


def load_judge(spec: str, device="cpu"):
    """Our AR baseline (a folder, or a run folder holding one in model/) or a transformers causal LM."""
    path = Path(spec).expanduser()
    if path.is_dir():
        folder = exported(path)
        return ARJudge(folder, device) if is_ar_folder(folder) else HFJudge(str(path), device)
    if path.is_absolute() or spec.startswith(".") or (path.parent != Path(".") and path.parent.is_dir()):
        raise FileNotFoundError(f"judge folder {spec} does not exist (a judge is a causal LM folder, such as the AR "
                                "baseline `python -m training.bundle_ar` writes, or a hub id such as gpt2-large)")
    return HFJudge(spec, device)  # a hub id


def batches(rows: List[List[int]], size: int, device) -> Iterator[Tuple[int, torch.Tensor, torch.Tensor]]:
    """(start, ids (B, C) padded with 0, mask (B, C) bool) of consecutive chunks of `size` rows."""
    for start in range(0, len(rows), size):
        chunk = rows[start:start + size]
        width = max(map(len, chunk))
        ids = torch.zeros(len(chunk), width, dtype=torch.long)
        mask = torch.zeros(len(chunk), width, dtype=torch.bool)
        for i, r in enumerate(chunk):
            ids[i, :len(r)], mask[i, :len(r)] = torch.tensor(r, dtype=torch.long), True
        yield start, ids.to(device), mask.to(device)


def judge_ids(judge, model_tokenizer, ids: torch.Tensor, texts: Sequence[str]) -> Tuple[List[List[int]], str]:
    """What the judge reads for samples ids (N, L) with texts: the ids themselves when the
    vocabularies agree, else the texts in the judge's own tokens; and which ("ids" or "text")."""
    if judge.vocabulary() == model_tokenizer.tokenizer.get_vocab():
        return ids.tolist(), "ids"
    return judge.encode(texts), "text"


def score(judge, seqs: List[List[int]], batch_size: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """(summed NLL (N,) float64, tokens scored (N,)) of every token but the first of each sequence,
    in windows of the judge's context overlapping by one token."""
    step = judge.context - 1
    owners, windows = [], []
    for n, s in enumerate(seqs):
        for start in range(0, len(s) - 1, step):
            owners.append(n)
            windows.append(s[start:start + judge.context])
    sums, counts = torch.zeros(len(seqs), dtype=torch.float64), torch.zeros(len(seqs), dtype=torch.long)
    for start, ids, mask in batches(windows, batch_size, judge.device):
        nll = judge.window_nll(ids, mask).double().sum(1).cpu()  # (B,)
        who = torch.tensor(owners[start:start + len(ids)])
        sums.index_add_(0, who, nll)
        counts.index_add_(0, who, mask[:, 1:].sum(1).cpu())
    return sums, counts


def features(judge, seqs: List[List[int]], batch_size: int) -> torch.Tensor:
    """Text features (N, D) float32: the judge's last layer at the last of each sequence's first
    `feature_length` tokens (MAUVE's featurisation)."""
    rows = [s[:judge.feature_length] or [0] for s in seqs]
    return torch.cat([judge.features(ids, mask).cpu() for _, ids, mask in batches(rows, batch_size, judge.device)])
