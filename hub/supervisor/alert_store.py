"""Alerts in the database: raise (at most one open per key), add a timeline entry, clear, list."""
from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError

from ..db import Database, retry_busy
from ..models import Alert, AlertEvent, ServiceSession
from ..models.base import fixed
from ..privacy.views import mask_json

alerts_t = Alert.__table__
events_t = AlertEvent.__table__
sessions_t = ServiceSession.__table__


ALERT_FIELDS = ("id", "key", "kind", "rule_id", "rule_name", "session_id", "conversation_id", "agent_id", "group",
                "account_id", "state", "raised_at", "deadline", "cleared_at", "clear_reason", "detail")


def alert_json(row: Any) -> dict[str, Any]:
    """The alert object the API, ``alert.raised`` and ``alert.cleared`` carry."""
    return {"id": row.id, "kind": row.kind, "rule_id": row.rule_id, "rule_name": row.rule_name,
            "session_id": row.session_id, "conversation_id": row.conversation_id, "agent_id": row.agent_id,
            "group": row.group, "account_id": row.account_id, "state": row.state, "raised_at": row.raised_at,
            "deadline": row.deadline, "cleared_at": row.cleared_at, "clear_reason": row.clear_reason,
            "detail": mask_json(json.loads(row.detail or "{}"))}


@dataclass
class _Pending:
    values: dict[str, Any]
    at: float
    done: asyncio.Future


class AlertStore:
    """Raises ride together: alerts whose timers fire while a write is waiting for the database share
    one transaction (a burst of deadlines is one write, not hundreds queued behind other writers)."""

    def __init__(self, db: Database):
        self.db = db
        self._pending: list[_Pending] = []
        self._flusher: asyncio.Task | None = None

    async def raise_alert(self, values: dict[str, Any], at: float) -> tuple[dict[str, Any], bool]:
        """Insert an open alert with its ``raised`` entry; (alert, False) if one is already open for the key."""
        done = asyncio.get_running_loop().create_future()
        self._pending.append(_Pending(values, at, done))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.ensure_future(self._flush())
        return await done

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                results = await retry_busy(lambda: self._write(batch))
            except IntegrityError:  # another hub process raised one of them meanwhile: one by one
                results = [await self._write_one(p) for p in batch]
            except Exception as exc:  # noqa: BLE001
                results = [exc] * len(batch)
            for p, result in zip(batch, results):
                if p.done.done():
                    continue
                if isinstance(result, BaseException):
                    p.done.set_exception(result)
                else:
                    p.done.set_result(result)

    async def _write_one(self, p: _Pending) -> tuple[dict[str, Any], bool] | BaseException:
        try:
            return (await retry_busy(lambda: self._write([p])))[0]
        except IntegrityError as exc:
            existing = await self.open_for_key(p.values["key"])
            return (existing, False) if existing is not None else exc
        except Exception as exc:  # noqa: BLE001
            return exc

    async def _write(self, batch: list[_Pending]) -> list[tuple[dict[str, Any], bool]]:
        async with self.db.write() as conn:
            keys = list({p.values["key"] for p in batch})
            existing = {r.key: alert_json(r) for r in (await conn.execute(
                select(alerts_t).where(alerts_t.c.key.in_(keys)).where(alerts_t.c.state == fixed("open")))).all()}
            out: list[tuple[dict[str, Any], bool]] = []
            for p in batch:
                key = p.values["key"]
                if key in existing:
                    out.append((existing[key], False))
                    continue
                detail = json.dumps(p.values.get("detail") or {}, ensure_ascii=False)
                res = await conn.execute(alerts_t.insert().values(**{**p.values, "detail": detail}, state="open",
                                                                  raised_at=p.at))
                alert_id = res.inserted_primary_key[0]
                await conn.execute(events_t.insert().values(alert_id=alert_id, kind="raised", at=p.at,
                                                            data=json.dumps({"deadline": p.values.get("deadline")})))
                row = {**dict.fromkeys(ALERT_FIELDS), **p.values, "id": alert_id, "state": "open", "raised_at": p.at,
                       "detail": detail}
                existing[key] = alert_json(SimpleNamespace(**row))  # what was just written: no read back
                out.append((existing[key], True))
            return out

    async def add_event(self, alert_id: int, kind: str, at: float, data: dict[str, Any]) -> None:
        async def write() -> None:
            async with self.db.write() as conn:
                await conn.execute(events_t.insert().values(alert_id=alert_id, kind=kind, at=at,
                                                            data=json.dumps(data, ensure_ascii=False)))
        await retry_busy(write)

    async def clear(self, alert_id: int, at: float, reason: str, data: dict[str, Any] | None = None) -> dict | None:
        """Close an open alert (None if it was not open any more)."""
        async def write() -> bool:
            async with self.db.write() as conn:
                res = await conn.execute(update(alerts_t).where(alerts_t.c.id == alert_id)
                                         .where(alerts_t.c.state == fixed("open"))
                                         .values(state="cleared", cleared_at=at, clear_reason=reason[:32]))
                if res.rowcount != 1:
                    return False
                await conn.execute(events_t.insert().values(alert_id=alert_id, kind="cleared", at=at, data=json.dumps(
                    {"reason": reason, **(data or {})}, ensure_ascii=False)))
                return True

        return await self.get(alert_id) if await retry_busy(write) else None

    async def get(self, alert_id: int) -> dict[str, Any] | None:
        async with self.db.read() as conn:
            row = (await conn.execute(select(alerts_t).where(alerts_t.c.id == alert_id))).first()
        return alert_json(row) if row is not None else None

    async def open_for_key(self, key: str) -> dict[str, Any] | None:
        async with self.db.read() as conn:
            row = (await conn.execute(select(alerts_t).where(alerts_t.c.key == key)
                                      .where(alerts_t.c.state == fixed("open")))).first()
        return alert_json(row) if row is not None else None

    async def open_by_id(self, alert_id: int) -> tuple[str, dict[str, Any]] | None:
        """(key, alert) if the alert is open."""
        async with self.db.read() as conn:
            row = (await conn.execute(select(alerts_t).where(alerts_t.c.id == alert_id)
                                      .where(alerts_t.c.state == fixed("open")))).first()
        return (row.key, alert_json(row)) if row is not None else None

    async def open_for_session(self, session_id: int) -> list[tuple[str, dict[str, Any]]]:
        async with self.db.read() as conn:
            rows = (await conn.execute(select(alerts_t).where(alerts_t.c.session_id == session_id)
                                       .where(alerts_t.c.state == fixed("open")))).all()
        return [(r.key, alert_json(r)) for r in rows]

    async def latest_for_key(self, key: str) -> dict[str, Any] | None:
        async with self.db.read() as conn:
            row = (await conn.execute(select(alerts_t).where(alerts_t.c.key == key)
                                      .order_by(alerts_t.c.id.desc()).limit(1))).first()
        return alert_json(row) if row is not None else None

    async def open_alerts(self) -> list[tuple[str, dict[str, Any]]]:
        async with self.db.read() as conn:
            rows = (await conn.execute(select(alerts_t).where(alerts_t.c.state == fixed("open")))).all()
        return [(r.key, alert_json(r)) for r in rows]

    async def acknowledged_deadlines(self) -> dict[str, float]:
        """Timer key (``sla:<rule>:<session>``) -> the deadline of a session alert a supervisor acknowledged,
        for the sessions still open (the same breach is not raised again, after a restart too)."""
        open_sessions = select(sessions_t.c.id).where(sessions_t.c.state != fixed("closed"))
        async with self.db.read() as conn:
            rows = (await conn.execute(
                select(alerts_t.c.rule_id, alerts_t.c.session_id, alerts_t.c.deadline)
                .where(alerts_t.c.state == fixed("cleared")).where(alerts_t.c.clear_reason == fixed("acknowledged"))
                .where(alerts_t.c.deadline.is_not(None)).where(alerts_t.c.rule_id.is_not(None))
                .where(alerts_t.c.session_id.in_(open_sessions))
                .order_by(alerts_t.c.cleared_at, alerts_t.c.id))).all()
        return {f"sla:{r.rule_id}:{r.session_id}": r.deadline for r in rows}

    async def acknowledged_averages(self, since: float) -> set[str]:
        """Keys of agents' average alerts (raised since ``since``) whose latest cleared alert a supervisor
        acknowledged; the caller judges the averages again at once and drops those back under the limit."""
        async with self.db.read() as conn:
            rows = (await conn.execute(select(alerts_t.c.key, alerts_t.c.clear_reason)
                                       .where(alerts_t.c.state == fixed("cleared")).where(alerts_t.c.raised_at >= since)
                                       .where(alerts_t.c.kind == "avg_reply").order_by(alerts_t.c.id))).all()
        latest = {r.key: r.clear_reason for r in rows}
        return {key for key, reason in latest.items() if reason == "acknowledged"}

    async def search(self, *, state: str = "open", agent_id: int | None = None, session_id: int | None = None,
                     kind: str | None = None, limit: int = 200, with_timeline: bool = True,
                     holder_id: int | None = None) -> list[dict[str, Any]]:
        q = select(alerts_t)
        if holder_id is not None:  # theirs, or about a session they hold now
            held = select(sessions_t.c.id).where(sessions_t.c.agent_id == holder_id).where(sessions_t.c.state != fixed("closed"))
            q = q.where(or_(alerts_t.c.agent_id == holder_id, alerts_t.c.session_id.in_(held)))
        if state != "all":
            q = q.where(alerts_t.c.state == state)
        if agent_id is not None:
            q = q.where(alerts_t.c.agent_id == agent_id)
        if session_id is not None:
            q = q.where(alerts_t.c.session_id == session_id)
        if kind:
            q = q.where(alerts_t.c.kind == kind)
        async with self.db.read() as conn:
            rows = (await conn.execute(q.order_by(alerts_t.c.raised_at.desc(), alerts_t.c.id.desc())
                                       .limit(limit))).all()
            out = [alert_json(r) for r in rows]
            if with_timeline and out:
                ids = [a["id"] for a in out]
                events = (await conn.execute(select(events_t).where(events_t.c.alert_id.in_(ids))
                                             .order_by(events_t.c.at, events_t.c.id))).all()
                by_alert: dict[int, list[dict[str, Any]]] = {}
                for e in events:
                    by_alert.setdefault(e.alert_id, []).append({"kind": e.kind, "at": e.at,
                                                                "data": mask_json(json.loads(e.data or "{}"))})
                for a in out:
                    a["timeline"] = by_alert.get(a["id"], [])
        return out
