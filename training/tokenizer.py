"""Train a byte-level BPE tokenizer on a corpus: `python -m training.tokenizer --corpus train.txt --out tokenizer.json`."""
import argparse
from pathlib import Path
from typing import Iterable

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

EOS = "<|endoftext|>"


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
    tok.train_from_iterator(lines, trainer)
    return tok


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
