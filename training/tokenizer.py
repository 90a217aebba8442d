"""Train a byte-level BPE tokenizer on a corpus: `python -m training.tokenizer --corpus train.txt --out tokenizer.json`."""
import argparse
import re
import textwrap
from pathlib import Path
from typing import Iterable, Optional, Tuple

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from sedd_core.files import atomic_write

from .data import fingerprint, read_documents

EOS = "<|endoftext|>"
MAX_WORD = 100
LONG = re.compile(r"\S{%d,}" % (MAX_WORD + 1))


def train_tokenizer(lines: Iterable[str], vocab_size: int = 4096) -> Tokenizer:
    """Byte-level BPE (GPT-2 style) with `<|endoftext|>` as id 0; any text round-trips."""
    if vocab_size < 257 + 1:
        raise ValueError(f"vocab_size must be at least 258 (256 bytes + EOS + 1 merge), got {vocab_size}")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=[EOS], initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator((_cut(line) for line in lines), trainer)
    return tok


def _cut(line: str) -> str:
    """The line with every run of more than MAX_WORD non-space characters broken into lines of MAX_WORD:
    BPE training time grows with the square of a word's length (a 1 MB "word" would take hours), and
    no merge worth learning is longer. Ordinary text is left exactly as it is."""
    return LONG.sub(lambda m: "\n".join(textwrap.wrap(m.group(), MAX_WORD, break_long_words=True)), line)


def resolve_tokenizer(data) -> Tuple[Tokenizer, Optional[Path]]:
    """The tokenizer a `DataConfig` names, and its tokenizer.json (None for GPT-2's, which is not shipped)."""
    if data.tokenizer == "gpt2":
        from transformers import AutoTokenizer

        try:
            return AutoTokenizer.from_pretrained("gpt2").backend_tokenizer, None
        except OSError as err:
            raise ConnectionError("the GPT-2 tokenizer is not cached locally and the hub cannot be reached") from err
    if data.tokenizer == "train":
        path = Path(data.cache_dir) / f"tokenizer-{fingerprint(data.train, str(data.vocab_size))}.json"
        if not path.is_file():
            docs = (p for src in data.train for doc in read_documents(src) for p in doc.split("\n\n"))
            tok = train_tokenizer(docs, data.vocab_size)
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(path, tok.save)
    else:
        path = Path(data.tokenizer)
        if not path.is_file():
            raise FileNotFoundError(f"data.tokenizer: {path} does not exist (use gpt2, train, or a tokenizer.json path)")
    tok = Tokenizer.from_file(str(path))
    if tok.token_to_id(EOS) is None:
        raise ValueError(f"tokenizer {path} has no {EOS} token")
    return tok, path


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m training.tokenizer", description=__doc__)
    p.add_argument("--corpus", nargs="+", required=True, help="text files to learn merges from")
    p.add_argument("--out", required=True, help="where to write tokenizer.json")
    p.add_argument("--vocab-size", type=int, default=4096)
    args = p.parse_args(argv)
    files = [Path(f) for f in args.corpus]
    for f in files:
        if not f.is_file() or f.stat().st_size == 0:
            p.exit(2, f"error: corpus file {f} is missing or empty\n")
    tok = train_tokenizer((line for f in files for line in f.open(encoding="utf-8")), args.vocab_size)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    tok.save(args.out)
    print(f"wrote {args.out}: {tok.get_vocab_size()} tokens")


if __name__ == "__main__":
    main()
