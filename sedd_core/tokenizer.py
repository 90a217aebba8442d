"""Text <-> token ids: our `tokenizer.json` (byte-level BPE), or GPT-2's for the official checkpoints."""
from pathlib import Path
from typing import List

from tokenizers import Tokenizer


class TextTokenizer:
    """A thin wrapper around a `tokenizers.Tokenizer` with the end-of-text id."""

    def __init__(self, tokenizer: Tokenizer, eos_token: str = "<|endoftext|>"):
        self.tokenizer = tokenizer
        self.eos_id = tokenizer.token_to_id(eos_token)
        self.vocab_size = tokenizer.get_vocab_size()

    @classmethod
    def load(cls, folder) -> "TextTokenizer":
        """`folder/tokenizer.json` when present, else GPT-2's tokenizer (official checkpoints)."""
        file = Path(folder) / "tokenizer.json"
        if file.is_file():
            try:
                return cls(Tokenizer.from_file(str(file)))
            except Exception as err:  # tokenizers reports a damaged file as a plain Exception
                raise ValueError(f"{file} is not a readable tokenizer: {err}") from err
        from transformers import AutoTokenizer

        try:
            return cls(AutoTokenizer.from_pretrained("gpt2").backend_tokenizer)
        except OSError as err:
            raise ConnectionError(
                f"{folder} has no tokenizer.json and the GPT-2 tokenizer is not cached locally "
                "(it is downloaded from the hub once)"
            ) from err

    def encode(self, text: str) -> List[int]:
        return self.tokenizer.encode(text, add_special_tokens=False).ids

    def decode(self, ids) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=False)

    def pieces(self, ids) -> List[str]:
        """The text of each token on its own (what the editor shows on a chip)."""
        return [self.tokenizer.decode([i], skip_special_tokens=False) for i in ids]
