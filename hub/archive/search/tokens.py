"""Pure: message text -> index terms, query -> match plan, and the substring check both share.

Why not jieba words: a query must find every message LIKE '%query%' finds, and a segmenter splits
differently in different contexts (全额退款 -> 全额/退款, 退款到账 -> 退款/到账 ...; "款到" spans two
words and is in neither). Overlapping character bigrams cannot miss: a substring of length >= 2
occurs in a text exactly when all of its bigrams occur there at consecutive positions, which is a
phrase query on the bigram column; a single character is looked up in the unigram column. The
index answers with a tight candidate set, and ``contains_all`` confirms each candidate (a phrase
may in rare cases run across two runs of text or a symbol mapped to the same stand-in), so the
results are exactly the messages whose text contains every query term.

Text is compared NFKC-normalised and lower-cased (全角 ２０２４ finds 2024, "iPhone" finds
"IPHONE"); whitespace separates runs and query terms. Every character becomes a token character
for SQLite's unicode61 tokenizer and PostgreSQL's tsvector: letters and digits stay as they are,
punctuation, symbols and emoji map to a private-use stand-in (so "，急" is searchable too).
"""
from __future__ import annotations

import re
import unicodedata
from operator import add
from dataclasses import dataclass

MAX_TERMS = 8  # query terms (whitespace separated) at most
MAX_TERM_CHARS = 64  # characters per query term at most
_SPACE = re.compile(r"\s+")
_PRIVATE_BASE = 0xF0000  # Supplementary Private Use Area-A (category Co: a token character)


def normalize(text: str) -> str:
    """NFKC (full width -> half width) and lower case; the form both texts and queries are compared in."""
    return unicodedata.normalize("NFKC", text).lower()


def _token_char(ch: str) -> str:
    """Letters, digits and private-use characters stay; anything else gets a private-use stand-in."""
    cat = unicodedata.category(ch)
    if cat[0] in "LN" or cat == "Co":
        return ch
    return chr(_PRIVATE_BASE + ord(ch) % 0xFFFE)


class _TokenChars(dict):
    """``str.translate`` table: code point -> token character, filled in as characters are met."""

    def __missing__(self, code: int) -> str:
        self[code] = _token_char(chr(code))
        return self[code]


_TABLE = _TokenChars()


def runs(text: str) -> list[str]:
    """The whitespace-separated runs of the normalised text, each char a token character."""
    return [run.translate(_TABLE) for run in _SPACE.split(normalize(text)) if run]


@dataclass(frozen=True, slots=True)
class IndexTerms:
    """One message's terms: ``unigrams`` and ``bigrams`` in text order (space-joined for the index)."""

    unigrams: list[str]
    bigrams: list[str]


def index_terms(text: str | None) -> IndexTerms:
    """Every character (unigram) and every pair of neighbours within a run (bigram), in order."""
    uni: list[str] = []
    bi: list[str] = []
    for run in runs(text or ""):
        uni.extend(run)
        bi.extend(map(add, run, run[1:]))  # each char with the next
    return IndexTerms(uni, bi)


@dataclass(frozen=True, slots=True)
class QueryTerm:
    """One query term: ``text`` (normalised) to confirm and highlight, ``tokens`` to look up:
    one unigram for a single character, else the bigrams that must follow each other."""

    text: str
    tokens: tuple[str, ...]

    @property
    def single(self) -> bool:
        return len(self.tokens) == 1 and len(self.tokens[0]) == 1


class QueryError(ValueError):
    """A query that cannot be searched (empty, too many or too long terms)."""


def parse_query(query: str) -> list[QueryTerm]:
    """Whitespace-separated terms, all required; duplicates dropped. Raises QueryError."""
    raw = [t for t in _SPACE.split(normalize(query or "").strip()) if t]
    if not raw:
        raise QueryError("enter at least one character to search for, or choose a filter")
    if len(raw) > MAX_TERMS:
        raise QueryError(f"at most {MAX_TERMS} search terms")
    terms: list[QueryTerm] = []
    seen: set[str] = set()
    for word in raw:
        if len(word) > MAX_TERM_CHARS:
            raise QueryError(f"a search term has at most {MAX_TERM_CHARS} characters")
        if word in seen:
            continue
        seen.add(word)
        tok = word.translate(_TABLE)
        tokens = (tok,) if len(tok) == 1 else tuple(tok[i:i + 2] for i in range(len(tok) - 1))
        terms.append(QueryTerm(word, tokens))
    return terms


def lookup_terms(terms: list[QueryTerm]) -> list[QueryTerm]:
    """The terms the index is asked for: one inside another adds nothing (退款 in 退款到账)."""
    return [t for t in terms if not any(t.text != o.text and t.text in o.text for o in terms)]


def fts5_expression(terms: list[QueryTerm]) -> str:
    """SQLite FTS5 MATCH expression: per term a unigram lookup or a bigram phrase, all ANDed."""
    parts = []
    for term in lookup_terms(terms):
        column = "uni" if term.single else "bi"
        parts.append(f'{column} : "' + " ".join(term.tokens) + '"')  # tokens hold no quote (mapped)
    return " AND ".join(parts)


def tsquery(terms: list[QueryTerm]) -> str:
    """PostgreSQL tsquery text of the same plan (bigrams followed by ``<->``), terms ANDed."""
    return " & ".join("(" + " <-> ".join(f"'{tok}'" for tok in t.tokens) + ")" for t in lookup_terms(terms))


def tsvector(terms: IndexTerms) -> str:
    """PostgreSQL tsvector text: bigram i and unigram i share position i (positions cap at 16383)."""
    parts = [f"'{tok}':{min(i + 1, 16383)}" for i, tok in enumerate(terms.bigrams)]
    parts += [f"'{tok}':{min(i + 1, 16383)}" for i, tok in enumerate(terms.unigrams)]
    return " ".join(parts)


def contains_all(text: str | None, terms: list[QueryTerm]) -> bool:
    """The exact check: the normalised text contains every term (within one run, as LIKE would)."""
    norm = normalize(text or "")
    return all(t.text in norm for t in terms)
