"""Corpus -> token blocks: tokenise once, join documents with EOS, cut into fixed-length blocks.

Token ids are cached on disk as .npy files, keyed by the sources and the tokenizer, and read back
memory-mapped. `BlockStream` serves a deterministic, resumable stream of shuffled blocks.
"""
import hashlib
import json
from pathlib import Path
from typing import Iterator, List

import numpy as np
from tokenizers import Tokenizer

from sedd_core.files import atomic_write


def read_documents(source: str) -> Iterator[str]:
    """Documents of one source: a .txt file (one document), a .jsonl file ("text" per line), or
    hf:NAME[:CONFIG][@SPLIT] (a Hugging Face dataset's "text" column; split train by default)."""
    if source.startswith("hf:"):
        yield from _hf_documents(source[3:])
        return
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"corpus file {source} does not exist")
    try:
        if path.suffix == ".jsonl":
            with path.open(encoding="utf-8") as f:
                for n, line in enumerate(f, 1):
                    if line.strip():
                        try:
                            yield json.loads(line)["text"]
                        except (json.JSONDecodeError, KeyError, TypeError) as err:
                            raise ValueError(f"{source} line {n}: expected a JSON object with a \"text\" field") from err
        else:
            yield path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(f"corpus file {source} is not UTF-8 text: {err}") from err


def _hf_documents(spec: str) -> Iterator[str]:
    try:
        import datasets
    except ImportError as err:
        raise ImportError("hf: sources need the `datasets` package: pip install datasets") from err
    spec, _, split = spec.partition("@")
    name, _, config = spec.partition(":")
    try:
        ds = datasets.load_dataset(name, config or None, split=split or "train")
    except (ConnectionError, FileNotFoundError, ValueError) as err:
        raise ConnectionError(f"cannot load dataset {name!r} (offline, or no such dataset): {err}") from err
    for row in ds:
        yield row["text"]


def _paragraphs(text: str) -> List[str]:
    """Split into paragraphs that keep their separators, so joining them gives the text back."""
    parts = text.split("\n\n")
    return [p + "\n\n" for p in parts[:-1]] + [parts[-1]]


def tokenize(sources: List[str], tokenizer: Tokenizer, eos_id: int) -> np.ndarray:
    """All documents' ids, each followed by EOS: (N,) uint16 or uint32."""
    chunks = []
    for source in sources:
        for doc in read_documents(source):
            if doc.strip():
                chunks += [e.ids for e in tokenizer.encode_batch(_paragraphs(doc), add_special_tokens=False)]
                chunks.append([eos_id])
    if not chunks:
        raise ValueError(f"the corpus {sources} is empty")
    ids = np.fromiter((i for c in chunks for i in c), dtype=np.int64)
    return ids.astype(np.uint16 if tokenizer.get_vocab_size() < 2**16 else np.uint32)


def fingerprint(sources: List[str], extra: str = "") -> str:
    """A short hash of the sources (names, sizes, mtimes) and `extra`: the key of cached files."""
    h = hashlib.sha256(extra.encode())
    for s in sources:
        st = Path(s).stat() if Path(s).is_file() else None
        h.update(f"{s}|{st.st_size if st else ''}|{st.st_mtime_ns if st else ''}".encode())
    return h.hexdigest()[:16]


def cached_tokens(sources: List[str], tokenizer: Tokenizer, eos_id: int, cache_dir: str) -> np.ndarray:
    """`tokenize`, computed once and then memory-mapped from `cache_dir`."""
    path = Path(cache_dir) / f"tokens-{fingerprint(sources, tokenizer.to_str())}.npy"
    if not path.is_file():
        ids = tokenize(sources, tokenizer, eos_id)
        path.parent.mkdir(parents=True, exist_ok=True)

        def save(tmp):
            with open(tmp, "wb") as f:
                np.save(f, ids)

        atomic_write(path, save)
    return np.load(path, mmap_mode="r")


def to_blocks(ids: np.ndarray, length: int, what: str) -> np.ndarray:
    """(N,) -> (N // length, length); an error when there is not one full block."""
    n = len(ids) // length
    if n < 1:
        raise ValueError(f"the {what} corpus has {len(ids)} tokens, fewer than one block of {length}")
    return ids[: n * length].reshape(n, length)


def load_splits(data, length: int, tokenizer: Tokenizer, eos_id: int):
    """(train, valid) blocks for a `DataConfig`: its valid sources, or the last valid_fraction of train."""
    train = to_blocks(cached_tokens(data.train, tokenizer, eos_id, data.cache_dir), length, "training")
    if data.valid:
        return train, to_blocks(cached_tokens(data.valid, tokenizer, eos_id, data.cache_dir), length, "validation")
    n_valid = max(1, int(len(train) * data.valid_fraction))
    if len(train) <= n_valid:
        raise ValueError(f"the corpus has {len(train)} blocks of {length} tokens: too few to hold out a validation split")
    return train[:-n_valid], train[-n_valid:]


class BlockStream:
    """Epochs of shuffled block indices, addressed by one integer position (what a checkpoint stores)."""

    def __init__(self, n_blocks: int, seed: int):
        self.n, self.seed = n_blocks, seed

    def indices(self, position: int, count: int) -> np.ndarray:
        out = []
        while count > 0:
            epoch, offset = divmod(position, self.n)
            take = min(count, self.n - offset)
            out.append(np.random.default_rng([self.seed, epoch]).permutation(self.n)[offset : offset + take])
            position, count = position + take, count - take
        return np.concatenate(out)
