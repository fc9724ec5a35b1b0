"""Customer 360: identity resolution and merges, tags, the profile shown beside every session."""
from __future__ import annotations

from typing import Any

_MOVABLE: dict[str, Any] = {}


def register_movable(name: str, table: Any) -> None:
    """A table with a ``customer_id`` column whose rows follow a customer through merges (e.g. orders)."""
    _MOVABLE[name] = table


def movable_tables() -> dict[str, Any]:
    return dict(_MOVABLE)
