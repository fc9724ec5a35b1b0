"""Typed, path-aware accessors for platform payloads (private to the adapters).

Every accessor takes ``(obj, key, prefix)`` where ``prefix`` is the dotted path of ``obj`` itself, and
either returns a value of the promised type or raises ``PayloadError`` naming ``prefix.key``.
JSON ``null`` counts as missing. No KeyError/TypeError ever escapes.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

from .errors import PayloadError
from .model import gmt8_to_epoch, yuan_to_fen

T = TypeVar("T")


def path(prefix: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{prefix}[{key}]"
    return f"{prefix}.{key}" if prefix else key


def root(payload: Any) -> dict:
    if not isinstance(payload, dict):
        raise PayloadError("$", f"expected a JSON object, got {kind(payload)}")
    return payload


def kind(value: Any) -> str:
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "array",
            dict: "object", type(None): "null"}.get(type(value), type(value).__name__)


def _raw(obj: dict, key: str, prefix: str, required: bool) -> Any:
    value = obj.get(key)
    if value is None and required:
        raise PayloadError(path(prefix, key), "missing required field")
    return value


def mapping(obj: dict, key: str, prefix: str = "", *, required: bool = True) -> dict:
    value = _raw(obj, key, prefix, required)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise PayloadError(path(prefix, key), f"expected an object, got {kind(value)}")
    return value


def array(obj: dict, key: str, prefix: str = "", *, required: bool = True, nonempty: bool = False) -> list:
    value = _raw(obj, key, prefix, required)
    if value is None:
        value = []
    if not isinstance(value, list):
        raise PayloadError(path(prefix, key), f"expected an array, got {kind(value)}")
    if nonempty and not value:
        raise PayloadError(path(prefix, key), "must not be empty")
    return value


def element(items: list, index: int, prefix: str) -> dict:
    value = items[index]
    if not isinstance(value, dict):
        raise PayloadError(path(prefix, index), f"expected an object, got {kind(value)}")
    return value


def text(obj: dict, key: str, prefix: str = "", *, required: bool = False) -> str:
    """A string; a required one must also be non-empty."""
    value = _raw(obj, key, prefix, required)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise PayloadError(path(prefix, key), f"expected a string, got {kind(value)}")
    if required and not value.strip():
        raise PayloadError(path(prefix, key), "must not be empty")
    return value


def ident(obj: dict, key: str, prefix: str = "", *, required: bool = True) -> str:
    """A platform id given as an integer or a string, returned as a string (big ints stay exact)."""
    value = _raw(obj, key, prefix, required)
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        hint = " (ids must be integers or strings; a float loses digits)" if isinstance(value, float) else ""
        raise PayloadError(path(prefix, key), f"expected an id, got {kind(value)}{hint}")
    value = str(value).strip()
    if required and not value:
        raise PayloadError(path(prefix, key), "must not be empty")
    return value


def integer(obj: dict, key: str, prefix: str = "", *, required: bool = True, default: int = 0,
            minimum: int | None = None, digits: bool = False) -> int:
    """An integer; ``digits=True`` also accepts a string of ASCII digits (JD sends numbers as strings)."""
    value = _raw(obj, key, prefix, required)
    if value is None:
        return default
    if digits and isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        raise PayloadError(path(prefix, key), f"expected an integer, got {kind(value)} {value!r}")
    if minimum is not None and value < minimum:
        raise PayloadError(path(prefix, key), f"must be at least {minimum}, got {value}")
    return value


def yuan(obj: dict, key: str, prefix: str = "", *, required: bool = True) -> int:
    """A yuan string such as ``"99.00"`` → fen."""
    value = _raw(obj, key, prefix, required)
    if value is None:
        return 0
    try:
        return yuan_to_fen(value)
    except ValueError as exc:
        raise PayloadError(path(prefix, key), str(exc)) from None


def fen(obj: dict, key: str, prefix: str = "", *, required: bool = True) -> int:
    """An integer amount already in fen (Douyin)."""
    return integer(obj, key, prefix, required=required)


def gmt8(obj: dict, key: str, prefix: str = "", *, required: bool = False,
         unset: Iterable[str] = ()) -> float | None:
    """A ``yyyy-MM-dd HH:mm:ss`` GMT+8 string → epoch seconds; ``""`` and ``unset`` values mean None."""
    value = _raw(obj, key, prefix, required)
    if value is None or (isinstance(value, str) and (not value.strip() or value.strip() in unset)):
        if required:
            raise PayloadError(path(prefix, key), "missing required time")
        return None
    try:
        return gmt8_to_epoch(value)
    except ValueError as exc:
        raise PayloadError(path(prefix, key), str(exc)) from None


def epoch(obj: dict, key: str, prefix: str = "", *, required: bool = False) -> float | None:
    """Unix seconds as an integer (Douyin); 0 means not set."""
    value = integer(obj, key, prefix, required=required, minimum=0)
    if not value:
        if required:
            raise PayloadError(path(prefix, key), "missing required time")
        return None
    return float(value)


def lookup(value: Any, table: dict[Any, T], where: str) -> T:
    """Map a platform enum value; an unknown one is a PayloadError, never a silent default."""
    try:
        return table[value]
    except (KeyError, TypeError):
        raise PayloadError(where, f"unknown value {value!r}") from None


def first(*values: str) -> str:
    """The first non-empty string."""
    return next((v for v in values if v), "")


def distinct_join(values: Iterable[str], sep: str = ",") -> str:
    """Non-empty values, de-duplicated in first-seen order, joined."""
    seen: list[str] = []
    for v in values:
        if v and v not in seen:
            seen.append(v)
    return sep.join(seen)
