"""The FAQ knowledge base: rows in the database, an in-memory matcher kept in step with them.

CRUD goes through here so the matcher is updated incrementally; another process's changes are
picked up by ``refresh_if_changed`` (a cheap max(updated_at)/count check) within seconds.
"""
from __future__ import annotations

import json
import logging
from typing import Any

from sqlalchemy import delete, func, select, text, update

from ..clock import Clock
from ..db import Database
from ..errors import HubError, bad_request, not_found
from ..http_util import storable
from ..models import BrandWord, FaqRow
from .matcher import FaqEntry, FaqMatcher, Match
from .tokenizer import Tokenizer

log = logging.getLogger(__name__)
faq_t = FaqRow.__table__
words_t = BrandWord.__table__

MAX_QUESTION = 500
MAX_ANSWER = 4000


def entry_from_row(row: Any) -> FaqEntry:
    return FaqEntry(row.id, row.question, tuple(json.loads(row.similar or "[]")), row.answer, row.category,
                    bool(row.enabled))


def faq_json(row: Any) -> dict[str, Any]:
    return {"id": row.id, "question": row.question, "similar": json.loads(row.similar or "[]"), "answer": row.answer,
            "category": row.category, "enabled": bool(row.enabled), "hits": row.hits, "updated_at": row.updated_at}




def validate_faq(data: Any) -> dict[str, Any]:
    """Check one FAQ as an operator (or an import) gives it; field-level errors."""
    if not isinstance(data, dict):
        raise bad_request("invalid_faq", "an FAQ must be an object")
    question = data.get("question")
    if not isinstance(question, str) or not question.strip() or len(question) > MAX_QUESTION:
        raise bad_request("invalid_question", f"question: 1 to {MAX_QUESTION} characters", "question")
    answer = data.get("answer")
    if not isinstance(answer, str) or not answer.strip() or len(answer) > MAX_ANSWER:
        raise bad_request("invalid_answer", f"answer: 1 to {MAX_ANSWER} characters", "answer")
    similar = data.get("similar", [])
    if isinstance(similar, str):
        similar = [s for s in (x.strip() for x in similar.split("|")) if s]
    if not isinstance(similar, list) or not all(isinstance(s, str) and 0 < len(s) <= MAX_QUESTION for s in similar):
        raise bad_request("invalid_similar", "similar: a list of questions", "similar")
    if any("|" in s for s in similar):  # the CSV's separator: "A|B" came back from an export as two
        raise bad_request("invalid_similar", "similar: a question may not contain |", "similar")
    category = data.get("category", "") or ""
    if not isinstance(category, str) or len(category) > 64:
        raise bad_request("invalid_category", "category: at most 64 characters", "category")
    for name, values in (("question", [question]), ("answer", [answer]), ("similar", similar),
                         ("category", [category])):
        if not all(storable(v) for v in values):
            raise bad_request(f"invalid_{name}", f"{name}: no NUL character and no half of an emoji "
                              "(a lone surrogate)", name)
    enabled = data.get("enabled", True)
    if not isinstance(enabled, bool):
        raise bad_request("invalid_enabled", "enabled: true or false", "enabled")
    return {"question": question.strip(), "similar": [s.strip() for s in similar if s.strip()],
            "answer": answer.strip(), "category": category.strip(), "enabled": enabled}


class KnowledgeBase:
    def __init__(self, db: Database, clock: Clock, tokenizer: Tokenizer | None = None,
                 confident: float | None = None, suggest: float | None = None):
        self.db = db
        self.clock = clock
        self.tokenizer = tokenizer or Tokenizer()
        kwargs = {k: v for k, v in (("confident", confident), ("suggest", suggest)) if v is not None}
        self.matcher = FaqMatcher(self.tokenizer, **kwargs)
        self._version: tuple[Any, Any, Any] = (None, None, None)
        self._words: set[str] = set()
        self._checked_at = float("-inf")

    async def load(self) -> None:
        async with self.db.read() as conn:
            # the version first: a change committed while the rows are read makes it stale (loaded
            # again at the next check), never counted without its rows
            version = await self._current_version(conn)
            rows = (await conn.execute(select(faq_t))).all()
            words = (await conn.execute(select(words_t.c.word))).scalars().all()
        self._version = version
        gone = self._words - set(words)  # removed by another process
        if gone:
            self.tokenizer.remove_words(gone)
            self._words -= gone
        self._add_words(words)
        self.matcher = FaqMatcher(self.tokenizer, [entry_from_row(r) for r in rows], confident=self.matcher.confident,
                                  suggest=self.matcher.suggest)

    async def _current_version(self, conn: Any) -> tuple[Any, Any, Any]:
        """(newest FAQ change, FAQ count, (brand words, newest brand word)): a word taken out and
        another put in leave the count as it was, the newest word's time tells."""
        faq = (await conn.execute(select(func.max(faq_t.c.updated_at), func.count()).select_from(faq_t))).first()
        words = (await conn.execute(select(func.count(), func.max(words_t.c.created_at)).select_from(words_t))).first()
        return (faq[0], faq[1], tuple(words))

    async def _changed_elsewhere(self, conn: Any) -> bool:
        """At the start of a write: has another process changed the FAQ since this one loaded it?
        (The version stored after the write counts that change too, so it must be loaded now.) On
        PostgreSQL the FAQ writes of all processes take turns (an advisory lock to the end of the
        transaction): each statement there sees the latest commits, so another process's write
        committed between this check and the version read at the end would be counted unloaded."""
        if self.db.dialect == "postgresql":
            await conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('scrm-hub:faq-writes'))"))
        return await self._current_version(conn) != self._version

    async def refresh_if_changed(self, every: float = 2.0) -> None:
        """Reload when another process changed the FAQ (checked at most every ``every`` seconds)."""
        now = self.clock.now()
        if now - self._checked_at < every:
            return
        self._checked_at = now
        async with self.db.read() as conn:
            version = await self._current_version(conn)
        if version != self._version:
            await self.load()

    def _add_words(self, words: Any) -> None:
        new = [w for w in words if w not in self._words]
        if new:
            self.tokenizer.add_words(new)
            self._words.update(new)

    # -- matching -------------------------------------------------------------------------------
    def match(self, text: str, top_k: int = 5) -> list[Match]:
        return self.matcher.match(text, top_k)

    def is_confident(self, matches: list[Match]) -> bool:
        return self.matcher.is_confident(matches)

    def suggestions(self, matches: list[Match]) -> list[dict[str, Any]]:
        return [{"id": m.id, "question": m.question, "answer": m.answer, "score": round(m.score, 1)}
                for m in matches if m.score >= self.matcher.suggest]

    # -- CRUD -----------------------------------------------------------------------------------
    async def list(self, category: str | None = None, q: str | None = None) -> list[dict[str, Any]]:
        query = select(faq_t).order_by(faq_t.c.id)
        if category:
            query = query.where(faq_t.c.category == category)
        if q:
            # autoescape: a % or _ the operator types is that character, not a LIKE wildcard
            query = query.where(faq_t.c.question.contains(q, autoescape=True) | faq_t.c.answer.contains(q, autoescape=True))
        async with self.db.read() as conn:
            return [faq_json(r) for r in (await conn.execute(query)).all()]

    async def get(self, faq_id: int) -> dict[str, Any]:
        async with self.db.read() as conn:
            row = (await conn.execute(select(faq_t).where(faq_t.c.id == faq_id))).first()
        if row is None:
            raise not_found("unknown_faq", f"no FAQ {faq_id}")
        return faq_json(row)

    async def create(self, data: Any) -> dict[str, Any]:
        return (await self.create_many([validate_faq(data)]))[0]

    async def create_many(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        now = self.clock.now()
        created = []
        async with self.db.write() as conn:
            stale = await self._changed_elsewhere(conn)
            for v in items:
                res = await conn.execute(faq_t.insert().values(
                    question=v["question"], similar=json.dumps(v["similar"], ensure_ascii=False), answer=v["answer"],
                    category=v["category"], enabled=v["enabled"], hits=0, created_at=now, updated_at=now))
                created.append(res.inserted_primary_key[0])
            rows = (await conn.execute(select(faq_t).where(faq_t.c.id.in_(created)).order_by(faq_t.c.id))).all()
            self._version = await self._current_version(conn)
        if stale:
            await self.load()
        else:
            for row in rows:
                self.matcher.add(entry_from_row(row))
        return [faq_json(r) for r in rows]

    async def import_many(self, items: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """An import: (created, updated). A row whose question is an FAQ's already replaces that FAQ (an
        exported file, edited and imported again, added every entry a second time and the bot kept the
        old answers); of a file's rows with one question the last wins."""
        by_question = {v["question"]: v for v in items}
        questions = list(by_question)
        now = self.clock.now()
        async with self.db.write() as conn:
            existing: dict[str, int] = {}
            for start in range(0, len(questions), 500):
                found = await conn.execute(select(faq_t.c.question, func.min(faq_t.c.id)).where(
                    faq_t.c.question.in_(questions[start:start + 500])).group_by(faq_t.c.question))
                existing.update({q: i for q, i in found.all()})
            created, updated = [], []
            for question, v in by_question.items():
                values = dict(question=question, similar=json.dumps(v["similar"], ensure_ascii=False),
                              answer=v["answer"], category=v["category"], enabled=v["enabled"], updated_at=now)
                if question in existing:
                    await conn.execute(update(faq_t).where(faq_t.c.id == existing[question]).values(**values))
                    updated.append(existing[question])
                else:
                    res = await conn.execute(faq_t.insert().values(hits=0, created_at=now, **values))
                    created.append(res.inserted_primary_key[0])
            rows = {r.id: r for r in (await conn.execute(select(faq_t).where(faq_t.c.id.in_(created + updated)))).all()}
        await self.load()
        return [faq_json(rows[i]) for i in created], [faq_json(rows[i]) for i in updated]

    async def update(self, faq_id: int, data: Any) -> dict[str, Any]:
        current = await self.get(faq_id)
        merged = validate_faq({**current, **(data if isinstance(data, dict) else {})})
        async with self.db.write() as conn:
            stale = await self._changed_elsewhere(conn)
            await conn.execute(update(faq_t).where(faq_t.c.id == faq_id).values(
                question=merged["question"], similar=json.dumps(merged["similar"], ensure_ascii=False),
                answer=merged["answer"], category=merged["category"], enabled=merged["enabled"],
                updated_at=self.clock.now()))
            row = (await conn.execute(select(faq_t).where(faq_t.c.id == faq_id))).first()
            if row is None:  # deleted (by another admin or process) since it was read above
                raise not_found("unknown_faq", f"no FAQ {faq_id}")
            self._version = await self._current_version(conn)
        if stale:
            await self.load()
        else:
            self.matcher.replace(entry_from_row(row))
        return faq_json(row)

    async def delete(self, faq_id: int) -> None:
        async with self.db.write() as conn:
            stale = await self._changed_elsewhere(conn)
            res = await conn.execute(delete(faq_t).where(faq_t.c.id == faq_id))
            if res.rowcount == 0:
                raise not_found("unknown_faq", f"no FAQ {faq_id}")
            self._version = await self._current_version(conn)
        if stale:
            await self.load()
        else:
            self.matcher.remove(faq_id)

    async def count_hit(self, faq_id: int, conn: Any = None) -> None:
        """One more hit (in ``conn``'s transaction when given)."""
        if conn is not None:
            await conn.execute(update(faq_t).where(faq_t.c.id == faq_id).values(hits=faq_t.c.hits + 1))
            return
        async with self.db.write() as own:
            await self.count_hit(faq_id, own)

    # -- brand dictionary -----------------------------------------------------------------------
    async def words(self) -> list[str]:
        async with self.db.read() as conn:
            return list((await conn.execute(select(words_t.c.word).order_by(words_t.c.word))).scalars())

    async def add_words(self, words: list[str]) -> list[str]:
        clean = sorted({w.strip() for w in words if isinstance(w, str) and w.strip()})
        if not clean or any(len(w) > 64 or " " in w or not storable(w) for w in clean):
            raise HubError(400, "invalid_words", "words: 1 to 64 characters, no spaces, no NUL or half an emoji",
                           "words")
        async with self.db.write() as conn:
            existing = set((await conn.execute(select(words_t.c.word).where(words_t.c.word.in_(clean)))).scalars())
            for w in clean:
                if w not in existing:
                    await conn.execute(words_t.insert().values(word=w, created_at=self.clock.now()))
        self._add_words(clean)
        await self.load()  # re-tokenise the entries with the new words
        return clean

    async def remove_words(self, words: list[str]) -> list[str]:
        """Delete words from the brand dictionary; returns those that were in it."""
        clean = sorted({w.strip() for w in words if isinstance(w, str) and w.strip()})
        if not clean:
            raise HubError(400, "invalid_words", "words: a non-empty list", "words")
        async with self.db.write() as conn:
            present = list((await conn.execute(select(words_t.c.word).where(words_t.c.word.in_(clean)))).scalars())
            if present:
                await conn.execute(words_t.delete().where(words_t.c.word.in_(present)))
        self.tokenizer.remove_words(present)
        self._words.difference_update(present)
        await self.load()  # re-tokenise the entries without them
        return sorted(present)
