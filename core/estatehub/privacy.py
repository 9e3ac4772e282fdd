"""Personal-data minimisation shared by the core and plugins (DESIGN.md, data rules)."""

from __future__ import annotations


def mask_plate(plate: str) -> str:
    """Mask a plate for logs and screens: ``沪A12345`` → ``沪A·***45``.

    Keeps the first two characters (province and authority letter), a middle dot, one star
    per hidden character and the last two characters: enough for a guard to match a car,
    not enough to track one. Strings of four characters or fewer are starred out
    completely, since showing four of them would show everything.
    """
    compact = plate.replace("·", "")
    if len(compact) <= 4:
        return "*" * len(compact)
    return f"{compact[:2]}·{'*' * (len(compact) - 4)}{compact[-2:]}"
