"""CSV for people: the exports supervisors open in Excel or WPS.

A cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is a formula to a
spreadsheet (``=HYPERLINK(...)`` sent by a customer would run on the supervisor's machine), so such
text gets a leading apostrophe, which the spreadsheet shows as text. Numbers are left alone.
"""
from __future__ import annotations

from typing import Any, Iterable

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def cell(value: Any) -> Any:
    return "'" + value if isinstance(value, str) and value.startswith(FORMULA_START) else value


def row(values: Iterable[Any]) -> list[Any]:
    return [cell(v) for v in values]


def record(values: dict[str, Any]) -> dict[str, Any]:
    return {k: cell(v) for k, v in values.items()}
