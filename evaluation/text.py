"""Evaluation text: the paper's five zero-shot sets by name, any Hugging Face dataset, or a local file.

The SEDD paper (Lou, Meng, Ermon 2024, Table 1) reports zero-shot perplexities on LAMBADA, WikiText2,
PTB, WikiText103 and One Billion Words with GPT-2's protocol. The reference code (the official
repository's data.py; MDLM's reproduction uses the same) prepares each set as follows, and so does
this module:
- each example (a row) is detokenised with its set's rules below, tokenised on its own and followed
  by the end-of-text token (empty rows too: a WikiText blank line is one EOS); all examples are
  joined and cut into blocks of the model's length, the remainder dropped. (The reference code joins
  and cuts per batch of 1,000 rows, which drops a few more tokens.)
- splits: validation for WikiText and PTB, test for One Billion Words and LAMBADA (the splits MDLM
  evaluates; LAMBADA is OpenAI's test file, 5,153 passages); `NAME@SPLIT` picks another.
- detokenisers: WikiText undoes the " @-@ " number separators, spaces before punctuation, spaced
  brackets and quotes, "= = =" headings, " N " numbers and " 's"; PTB undoes " 's", " n't", "\\/",
  " N " (to 1), "$ 1", "# 1" and maps <unk> to "?"; One Billion Words undoes spaced URLs,
  punctuation, quotes, brackets and currency signs; LAMBADA turns curly quotes straight and starts
  each passage on a new line.

The named sets come from the Hugging Face hub through `datasets` (the Parquet copies of the sets
whose loading scripts `datasets` no longer runs), so they need the network once (then the cache).
`hf:NAME[:CONFIG][@SPLIT]` reads any dataset's "text" column, as training does; a `.txt` file is one
document, a `.jsonl` file one document per line (its "text"). `blocks` cuts documents into model inputs.
"""
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Optional, Tuple

import torch

from training.data import read_documents


def _replace(pairs):
    def apply(text: str) -> str:
        for old, new in pairs:
            text = re.sub(old, new, text) if isinstance(old, re.Pattern) else text.replace(old, new)
        return text
    return apply


WIKITEXT = _replace([
    ("s '", "s'"), (" @-@ ", "-"), (" @,@ ", ","), (" @.@ ", "."),
    (" : ", ": "), (" ; ", "; "), (" . ", ". "), (" ! ", "! "), (" ? ", "? "), (" , ", ", "),
    (re.compile(r"\(\s*([^\)]*?)\s*\)"), r"(\1)"), (re.compile(r"\[\s*([^\]]*?)\s*\]"), r"[\1]"),
    (re.compile(r"{\s*([^}]*?)\s*}"), r"{\1}"), (re.compile(r"\"\s*([^\"]*?)\s*\""), r'"\1"'),
    (re.compile(r"'\s*([^']*?)\s*'"), r"'\1'"),
    ("= = = =", "===="), ("= = =", "==="), ("= =", "=="), (" \u00b0 ", "\u00b0"), (" \n", "\n"), ("\n ", "\n"),
    (" N ", " 1 "), (" 's", "'s"),
])
PTB = _replace([(" 's", "'s"), ("s ' ", "s' "), (" n't", "n't"), (" \n ", "\n"), ("\\/", "/")]
               + [(" N ", " 1 ")] * 10 + [("$ 1", "$1"), ("# 1", "#1"), ("<unk>", "?")])
LM1B = _replace([
    ("http : / / ", "http://"), ("https : / / ", "https://"), (re.compile(r" '(\w+)"), r"'\1"),
    (re.compile(r" (\w+) \. "), r" \1. "), (re.compile(r" (\w+) \.$"), r" \1."),
    (" ? ", "? "), (re.compile(r" \?$"), "?"), (" ! ", "! "), (re.compile(r" \!$"), "!"),
    (" , ", ", "), (" : ", ": "), (" ; ", "; "), (" / ", "/"),
    (re.compile(r"\" ([^\"]+) \""), r'"\1"'), (re.compile(r"' ([^']+) '"), r"'\1'"),
    (re.compile(r"\( ([^\(\)]+) \)"), r"(\1)"), (re.compile(r"\[ ([^\[\]]+) \]"), r"[\1]"),
    ("$ ", "$"), ("\u00a3 ", "\u00a3"),
])


def lambada(text: str) -> str:
    return "\n" + text.replace("\u201c", '"').replace("\u201d", '"').strip()


@dataclass(frozen=True)
class ZeroShotSet:
    title: str
    path: str  # hub dataset id
    split: str
    column: str
    detokenize: Callable[[str], str]
    config: str = None
    revision: str = None
    files: str = None  # data files inside the repo, "{split}" filled in

    def load(self, split: str):
        import datasets

        files = {split: self.files.format(split=split)} if self.files else None
        return datasets.load_dataset(self.path, self.config, split=split, revision=self.revision, data_files=files)


PARQUET = "refs/convert/parquet"  # the hub's Parquet export of a dataset that has a loading script
SETS = {
    "lambada": ZeroShotSet("LAMBADA", "EleutherAI/lambada_openai", "test", "text", lambada,
                           files="data/lambada_{split}.jsonl"),
    "wikitext2": ZeroShotSet("WikiText2", "Salesforce/wikitext", "validation", "text", WIKITEXT, "wikitext-2-raw-v1"),
    "ptb": ZeroShotSet("PTB", "ptb-text-only/ptb_text_only", "validation", "sentence", PTB, revision=PARQUET,
                       files="penn_treebank/{split}/*.parquet"),
    "wikitext103": ZeroShotSet("WikiText103", "Salesforce/wikitext", "validation", "text", WIKITEXT,
                               "wikitext-103-raw-v1"),
    "lm1b": ZeroShotSet("One Billion Words", "billion-word-benchmark/lm1b", "test", "text", LM1B, revision=PARQUET,
                        files="plain_text/{split}/*.parquet"),
}


def documents(source: str) -> Tuple[str, List[str]]:
    """(label, documents) of a named set (`NAME` or `NAME@SPLIT`, detokenised), `hf:...`, or a file."""
    name, _, split = source.partition("@")
    if name in SETS:
        spec = SETS[name]
        try:
            rows = spec.load(split or spec.split)
        except (OSError, ValueError) as err:  # ConnectionError and FileNotFoundError are OSErrors
            raise ConnectionError(f"cannot load {spec.title} ({spec.path}): {' '.join(str(err).split())[:300]} "
                                  "(the named sets need the network once; or pass a local .txt/.jsonl file)") from err
        return f"{name}@{split or spec.split}", [spec.detokenize(t) for t in rows[spec.column]]
    if source.startswith("hf:") or Path(source).is_file():
        docs = [d for d in read_documents(source) if d.strip()]
        if not docs:
            raise ValueError(f"{source} holds no text")
        return source, docs
    if "/" in source or "." in source:
        raise FileNotFoundError(f"{source} does not exist")
    raise ValueError(f"unknown dataset {source!r}: choose one of {', '.join(SETS)}, hf:NAME[:CONFIG][@SPLIT], "
                     "or a .txt / .jsonl file")


def blocks(tokenizer, docs: List[str], length: int, limit: Optional[int] = None, what: str = "the text") -> torch.Tensor:
    """The first `limit` (all when None) blocks (N, length) of `docs`, each tokenised on its own by a
    `TextTokenizer` and followed by its end-of-text id, then joined; the remainder is dropped."""
    ids = []
    for encoding in tokenizer.tokenizer.encode_batch(docs, add_special_tokens=False):
        ids += encoding.ids
        ids.append(tokenizer.eos_id)
    n = len(ids) // length if limit is None else min(limit, len(ids) // length)
    if n < 1:
        raise ValueError(f"{what} has {len(ids)} tokens, fewer than one block of {length}")
    return torch.tensor(ids[: n * length]).view(n, length)
