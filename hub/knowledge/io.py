"""FAQ import/export as CSV (``question,similar,answer,category,enabled``, similar questions joined by
``|``) and JSON (a list of objects with those keys, ``similar`` a list). Bad rows are reported by line
and skipped; the rest is imported. A file is UTF-8 (a BOM is dropped) or, failing that, GB18030: the
GBK CSV that Excel and WPS save on a Chinese Windows. The CSV export is for Excel too: a BOM (or it
reads the UTF-8 as GBK) and the formula guard of hub/spreadsheet.py (an FAQ made from a customer's
"=HYPERLINK(...)" would run); the import takes the guard's apostrophe off again."""
from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from typing import Any

from .. import spreadsheet
from ..errors import HubError
from .store import validate_faq

CSV_COLUMNS = ["question", "similar", "answer", "category", "enabled"]
NO = {"false", "0", "no", "n", "否", "停用"}  # an "enabled" cell that turns an FAQ off (blank: on)


@dataclass
class Parsed:
    items: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)  # {"line", "field", "message"}


def _check(parsed: Parsed, line: int, raw: Any) -> None:
    try:
        parsed.items.append(validate_faq(raw))
    except HubError as exc:
        parsed.errors.append({"line": line, "field": exc.field, "message": exc.message})


def parse_csv(text: str) -> Parsed:
    """Rows by the header's columns (an empty line is skipped). A row is reported by the line it
    starts on: an answer in quotes may span lines, and the line the import dialog shows must hold
    the row's start, not the tail of its answer."""
    parsed = Parsed()
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    header = next(reader, None) or []
    missing = [c for c in ("question", "answer") if c not in header]
    if missing:
        parsed.errors.append({"line": 1, "field": missing[0], "message": f"missing column(s): {', '.join(missing)}"})
        return parsed
    while True:
        line = reader.line_num + 1  # where the next row starts
        values = next(reader, None)
        if values is None:
            break
        if not values:
            continue
        if len(values) > len(header):
            parsed.errors.append({"line": line, "field": None, "message": "more values than columns"})
            continue
        row = {k: _unguard(v) for k, v in zip(header, values)}
        _check(parsed, line, {"question": row.get("question") or "", "answer": row.get("answer") or "",
                              "similar": row.get("similar") or "", "category": row.get("category") or "",
                              "enabled": (row.get("enabled") or "").strip().lower() not in NO})
    return parsed


def parse_json(text: str) -> Parsed:
    parsed = Parsed()
    try:
        data = json.loads(text)
    except ValueError as exc:
        parsed.errors.append({"line": getattr(exc, "lineno", 1), "field": None, "message": f"not JSON: {exc}"})
        return parsed
    if not isinstance(data, list):
        parsed.errors.append({"line": 1, "field": None, "message": "expected a list of FAQ objects"})
        return parsed
    for i, item in enumerate(data, start=1):
        _check(parsed, i, item)  # "line" is the item's 1-based position in the list
    return parsed


def decode(data: bytes) -> str | None:
    """A file's text: UTF-8 (BOM dropped), else GB18030 (a superset of GBK); None if neither."""
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return None


def parse_bytes(json_format: bool, data: bytes) -> Parsed:
    """Parse a file as uploaded (bytes); an undecodable one is a single error on line 1."""
    text = decode(data)
    if text is None:
        return Parsed(errors=[{"line": 1, "field": None, "message": "the file is neither UTF-8 nor GBK/GB18030"}])
    return parse_json(text) if json_format else parse_csv(text)


def _unguard(value: str) -> str:
    """A cell as the export wrote it, less the apostrophe its formula guard put in front."""
    return value[1:] if value.startswith("'") and value[1:].startswith(spreadsheet.FORMULA_START) else value


def to_csv(entries: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    buf.write("\ufeff")
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for e in entries:
        writer.writerow(spreadsheet.record({k: e.get(k) for k in CSV_COLUMNS} | {
            "similar": "|".join(e.get("similar") or []), "enabled": "true" if e.get("enabled", True) else "false"}))
    return buf.getvalue()


def to_json(entries: list[dict[str, Any]]) -> str:
    return json.dumps([{k: e[k] for k in CSV_COLUMNS} for e in entries], ensure_ascii=False, indent=2)
