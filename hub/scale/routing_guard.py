"""Assignment guards that hold across hub processes (PostgreSQL).

Each process routes with its own in-memory ``Dispatcher`` (a cache rebuilt from the database); the
database decides. An assignment commits only if, in the same transaction, the agent's row is locked
(``FOR UPDATE``: assignments to one agent take turns across processes), the agent is online, and
its open sessions are fewer than its cap; and the session is still ``queued`` (conditional UPDATE).
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import text

LOCK_AGENT = text("SELECT status, cap, disabled FROM users WHERE id = :agent FOR UPDATE")
AGENT_LOAD = text("SELECT count(*) FROM service_sessions WHERE agent_id = :agent AND state IN ('assigned', 'active')")


async def agent_has_room(conn: Any, agent_id: int) -> bool:
    """Lock the agent for this transaction and say whether it may take one more session."""
    row = (await conn.execute(LOCK_AGENT, {"agent": agent_id})).first()
    if row is None or row.status != "online" or row.disabled:
        return False
    load = (await conn.execute(AGENT_LOAD, {"agent": agent_id})).scalar() or 0
    return load < row.cap
