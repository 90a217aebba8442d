"""Argument checks with the wording a user reads: each rule of the public API written once.

The pipeline calls these before any tokenising or compute; the editor and the CLI show their
ValueError messages as they are.
"""
import math
import numbers

import torch

MAX_SEED = 2**63 - 1  # torch generators take seeds below 2^63
# The user-facing limits and defaults, for the library, the editor and the CLI alike.
STEPS, DEFAULT_STEPS = (1, 1024), 128  # sampler calls of the samplers that take steps
MAX_BATCH = 16  # candidates sampled (or ranked) at once
MAX_POINTS = 1024  # ELBO quadrature points (or Monte Carlo draws) of one score or ranking
MAX_LENGTHS = 128  # gap lengths one gap search tries


def whole(name: str, value, low: int, high: int) -> int:
    """`value` as an int in [low, high]: bools, fractions, text and None are refused."""
    if value is None or value == "":
        raise ValueError(f"{name} is empty: give a whole number from {low:,} to {high:,}")
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        if isinstance(value, numbers.Real) and math.isfinite(value) and float(value).is_integer():
            value = int(value)  # 8.0 is 8
        else:
            raise ValueError(f"{name} must be a whole number from {low:,} to {high:,}, got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be a whole number from {low:,} to {high:,}, got {value:,}")
    return int(value)


def seed(value) -> int:
    """A random seed: a whole number from 0 to MAX_SEED."""
    return whole("the seed", value, 0, MAX_SEED)


def batch(value) -> int:
    """The number of candidates sampled (or ranked) at once: 1 to MAX_BATCH."""
    return whole("the batch (candidates)", value, 1, MAX_BATCH)


def text(name: str, value, max_chars: int) -> str:
    """`value` as valid Unicode text of at most `max_chars` characters (checked before any tokenising)."""
    if not isinstance(value, str):
        raise ValueError(f"{name} must be text, got {type(value).__name__}")
    if len(value) > max_chars:
        raise ValueError(f"{name} has {len(value):,} characters: more than the model can hold "
                         f"(at most {max_chars:,} characters)")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as err:  # lone surrogates: a broken or half-pasted symbol
        raise ValueError(f"{name} holds characters that are not valid Unicode (a broken or half-pasted "
                         f"symbol at character {err.start}): remove them") from err
    return value


def flags(name: str, values) -> list:
    """A list of true/false values (never text such as "false", which would read as true)."""
    if not isinstance(values, (list, tuple)) or not all(isinstance(v, bool) for v in values):
        raise ValueError(f"{name} must be a list of true/false values")
    return list(values)


def rows_of_ids(name: str, value, rows: int, length: int, tokens: int) -> torch.Tensor:
    """`value` (a list of lists of whole numbers, or an integer tensor or array) as a (C, length) long tensor
    of token ids in [0, tokens), 1 <= C <= rows: no floats, bools or ragged rows."""
    shape = f"{name} must be 1 to {rows} rows of {length} token ids"
    if isinstance(value, torch.Tensor) or hasattr(value, "tolist"):  # a tensor or an array: its numbers
        value = value.tolist()  # bools and floats stay what they are, and are refused below
    if not (isinstance(value, (list, tuple)) and 0 < len(value) <= rows
            and all(isinstance(r, (list, tuple)) and len(r) == length for r in value)):
        raise ValueError(shape)
    if not all(isinstance(i, int) and not isinstance(i, bool) and 0 <= i < tokens for r in value for i in r):
        raise ValueError(f"{name} must hold whole-number token ids from 0 to {tokens - 1}")
    return torch.tensor(value, dtype=torch.long)


def whole_list(name: str, each: str, values, low: int, high: int, most: int) -> list:
    """1 to `most` whole numbers in [low, high] (a list, tuple or range); `each` names one of them."""
    if not isinstance(values, (list, tuple, range)):
        raise ValueError(f"{name} must be a list of whole numbers, got {type(values).__name__}")
    if not 0 < len(values) <= most:
        raise ValueError(f"give 1 to {most} {name}, got {len(values)}")
    return [whole(each, v, low, high) for v in values]
