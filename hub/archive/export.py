"""Archive export: every message, one per line, as JSON Lines or CSV, streamed in id order.

JSON Lines is the exact record. CSV is what people open in a spreadsheet, so its text cells are
made formula-safe (``hub/spreadsheet.py``): a customer's ``=HYPERLINK(...)`` stays text."""
from __future__ import annotations

import csv
import json
from typing import AsyncIterator, TextIO

from sqlalchemy import select

from .. import spreadsheet
from ..db import Database
from .history import message_json, messages

CSV_FIELDS = ["id", "conversation_id", "account_id", "channel", "direction", "kind", "peer_id", "sender",
              "text", "sent_at", "created_at", "status", "recalled"]


async def iter_messages(db: Database, since: float | None = None, batch: int = 2000) -> AsyncIterator[dict]:
    last = 0
    while True:
        query = select(messages).where(messages.c.id > last)
        if since is not None:
            query = query.where(messages.c.created_at >= since)
        async with db.read() as conn:
            rows = (await conn.execute(query.order_by(messages.c.id).limit(batch))).all()
        if not rows:
            return
        for row in rows:
            yield message_json(row)
        last = rows[-1].id


class ExportCut(Exception):
    """The output was closed before the end (``archive export | head``) or could not be written
    (``error``: a full disk, say): at most ``count`` messages went out (those handed to the output;
    the reader may have taken fewer)."""

    def __init__(self, count: int, error: OSError | None = None):
        super().__init__(f"output {'failed' if error else 'closed'} after {count} messages")
        self.count = count
        self.error = error


async def export(db: Database, out: TextIO, fmt: str = "jsonl", since: float | None = None) -> int:
    count = 0
    writer = None
    try:
        if fmt == "csv":
            out.write("\ufeff")  # a BOM, so that Excel reads the Chinese as UTF-8 (as the search page's export)
            writer = csv.DictWriter(out, fieldnames=CSV_FIELDS, extrasaction="ignore")
            writer.writeheader()
        async for msg in iter_messages(db, since):
            count += 1  # first: a write that finds the reader gone counts (its flush sent rows before it)
            if writer is not None:
                writer.writerow(spreadsheet.record(msg))
            else:
                out.write(json.dumps(msg, ensure_ascii=False) + "\n")
        out.flush()  # here, not at exit: a reader gone is seen while it can still be reported
    except BrokenPipeError:
        raise ExportCut(count) from None
    except OSError as exc:  # not written (ENOSPC, EIO): reported, and the export still audited
        raise ExportCut(count, exc) from None
    return count

