"""Templates: text in which `[[N]]` marks N free slots, and text glued to a gap marks an anchor.

"Once upon a time [[12]] ever after." has fixed text, 12 free slots, fixed text. `[[N]]` always
means N free slots. Text glued to a gap without a space is part of a word the gap completes: in
"an un[[3]] dog" the first of the 3 slots must begin with " un", in "[[3]]ing" the last of the 3 must
end with "ing". Such a slot is anchored (free, but its token must start, or end, with the word), so
the model chooses where the token boundary falls; as a fixed token of its own, " un" would rarely be
continued with the rest of a word. A word glued to both sides of a gap needs at least 2 slots.
"""
import re
from typing import List, Union

GAP = re.compile(r"\[\[(\d+)\]\]")
LEFT = re.compile(r"\s?\S+$")  # the word glued to a gap's left, with the space that opens it
RIGHT = re.compile(r"^\S+")  # the word glued to a gap's right


class Anchor(tuple):
    """("start" | "end", text): the slot's token must start (end) with the text."""

    def __new__(cls, side: str, text: str):
        return super().__new__(cls, (side, text))


Part = Union[str, int, Anchor]


def parse(text: str) -> List[Part]:
    """Fixed texts (str), gaps (int: the number of free slots) and anchors, in order."""
    pieces = GAP.split(text)  # text, N, text, N, ..., text
    parts: List[Part] = []
    rest = pieces[0]
    for n in range(1, len(pieces), 2):
        after = pieces[n + 1]
        left = LEFT.search(rest) if rest and not rest[-1].isspace() else None
        right = RIGHT.match(after) if after and not after[0].isspace() else None
        free = int(pieces[n]) - bool(left) - bool(right)  # the anchored slots are among the N
        if free < 0:
            raise ValueError(f"[[{pieces[n]}]] is glued to a word on each side: give it at least 2 slots")
        if left:
            parts += [rest[:left.start()], Anchor("start", left.group())]
        else:
            parts.append(rest)
        if free or not (left or right):  # [[0]] stays, for the canvas to refuse
            parts.append(free)
        if right:
            parts.append(Anchor("end", right.group()))
            after = after[right.end():]
        rest = after
    parts.append(rest)
    return [p for p in parts if p != ""]
