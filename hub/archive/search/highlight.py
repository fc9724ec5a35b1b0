"""Pure: mark the matched substrings of a text with <mark>, HTML-escaped, around the first match."""
from __future__ import annotations

import html
import unicodedata

from .tokens import QueryTerm

MAX_SNIPPET = 160  # characters shown around the first match of a long message


def _char_map(text: str) -> tuple[str, list[int]]:
    """The text normalised one character at a time, and for each normalised char its source index."""
    if unicodedata.is_normalized("NFKC", text):
        lowered = text.lower()
        if len(lowered) == len(text):  # lower() never shortens: same length means char for char
            return lowered, list(range(len(text)))
    out: list[str] = []
    where: list[int] = []
    for i, ch in enumerate(text):
        norm = unicodedata.normalize("NFKC", ch).lower()
        out.append(norm)
        where.extend([i] * len(norm))
    return "".join(out), where


def match_spans(text: str, terms: list[QueryTerm]) -> list[tuple[int, int]]:
    """Sorted, merged [start, end) spans of the source text where some term occurs."""
    norm, where = _char_map(text)
    spans: list[tuple[int, int]] = []
    for term in terms:
        start = norm.find(term.text)
        while start != -1:
            end = start + len(term.text)
            spans.append((where[start], where[end - 1] + 1))
            start = norm.find(term.text, start + 1)
    spans.sort()
    merged: list[tuple[int, int]] = []
    for s, e in spans:
        if merged and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], e))
        else:
            merged.append((s, e))
    return merged


def highlight(text: str | None, terms: list[QueryTerm], max_chars: int = MAX_SNIPPET) -> str:
    """HTML: the text (or a window of ``max_chars`` around the first match, with …) escaped,
    each match wrapped in <mark>."""
    text = text or ""
    spans = match_spans(text, terms)
    lo, hi = 0, len(text)
    if len(text) > max_chars:
        first = spans[0][0] if spans else 0
        lo = max(0, min(first - max_chars // 4, len(text) - max_chars))
        hi = lo + max_chars
    out: list[str] = ["…" if lo > 0 else ""]
    pos = lo
    for s, e in spans:
        if e <= lo or s >= hi:
            continue
        s, e = max(s, lo), min(e, hi)
        out.append(html.escape(text[pos:s]))
        out.append("<mark>" + html.escape(text[s:e]) + "</mark>")
        pos = e
    out.append(html.escape(text[pos:hi]))
    if hi < len(text):
        out.append("…")
    return "".join(out)
