"""Parsing helpers every vendor adapter needs for untrusted JSON payloads.

Adapters must turn any bad input into :class:`PayloadRejected` with a reason a person can act
on; these helpers do that for the parts all JSON adapters share, so each adapter only
states what its own fields mean.
"""

from __future__ import annotations

import json
from typing import Any

from .exceptions import PayloadRejected

SHOWN_CHARACTERS = 40


def _reject_constant(name: str) -> Any:
    # json.loads accepts NaN and Infinity by default; they are not JSON and no device
    # sends them on purpose.
    raise ValueError(f"{name} is not valid JSON")


def parse_json_object(text: str, source: str) -> dict[str, Any]:
    """Parse ``text`` as one JSON object, or raise :class:`PayloadRejected` naming ``source``.

    Refuses NaN/Infinity, anything that is not an object, and nesting deep enough to hit
    Python's recursion limit (a few thousand ``[``), which would otherwise escape as a
    RecursionError from the adapter.
    """
    try:
        document = json.loads(text, parse_constant=_reject_constant)
    except ValueError as exc:
        raise PayloadRejected(f"{source}: payload is not JSON ({exc})") from exc
    except RecursionError:
        raise PayloadRejected(f"{source}: payload is JSON nested too deeply") from None
    if not isinstance(document, dict):
        raise PayloadRejected(
            f"{source}: payload must be a JSON object, got {type(document).__name__}"
        )
    return document


def show_value(value: object) -> str:
    """A short, JSON-looking rendering of a bad value for a rejection reason."""
    try:
        rendered = json.dumps(value, ensure_ascii=False, default=repr)
    except RecursionError:
        return "a value nested too deeply to show"
    limit = SHOWN_CHARACTERS
    return rendered if len(rendered) <= limit else rendered[: limit - 3] + "..."
