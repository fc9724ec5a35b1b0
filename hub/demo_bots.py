"""Demo bot content (FAQs, keyword rules, routing rules): filled in as those features land."""
from __future__ import annotations

from .clock import Clock
from .db import Database


async def seed_demo_bots(db: Database, clock: Clock) -> None:
    return None
