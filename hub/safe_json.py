"""``json.loads`` for bodies from outside the hub (webhooks, API requests).

Nesting too deep for Python's parser (20,000 ``[``: 40 KB) raised ``RecursionError``, and an integer of
hundreds of digits parsed fine and then raised ``OverflowError`` where a time became a float: both
were 500s. Here both are a ``ValueError``, which every caller already answers with a 400.
"""
from __future__ import annotations

import json
from typing import Any

MAX_INT_DIGITS = 30  # a 19-digit order id fits; 10**400 as a modified_at does not


def _int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise ValueError(f"an integer of {len(text)} digits")
    return int(text)


def loads(data: str | bytes | bytearray) -> Any:
    try:
        return json.loads(data, parse_int=_int)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
