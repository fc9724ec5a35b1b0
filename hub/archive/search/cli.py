"""``python -m hub archive search QUERY [--limit N] [--account A] [--json] [--db URL]``.

Indexes whatever the running hub (or nobody) has not indexed yet first, so it finds every
archived message even on a database no hub has served since the messages arrived."""
from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone
from typing import Any

from ...clock import Clock
from ...db import Database
from .indexer import SearchIndexer, ensure_index
from .query import MAX_LIMIT, SearchFilters, search
from .tokens import QueryError


def add_search_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("search", help="full-text search of the archive, newest first")
    p.add_argument("query", help="words or any part of a message (whitespace-separated terms: all must occur)")
    p.add_argument("--limit", type=int, default=20, help=f"hits at most (1-{MAX_LIMIT}, default 20)")
    p.add_argument("--account", help="only this account's messages")
    p.add_argument("--json", action="store_true", help="one JSON object per hit")
    return p


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds")


async def search_command(db: Database, args: argparse.Namespace) -> int:
    if not 1 <= args.limit <= MAX_LIMIT:
        print(f"error: --limit must be 1 to {MAX_LIMIT}", file=sys.stderr)
        return 2
    await ensure_index(db)
    caught_up = await SearchIndexer(db, Clock(), batch=2000).catch_up()
    if caught_up:
        print(f"indexed {caught_up} messages first", file=sys.stderr)
    try:
        page = await search(db, args.query, SearchFilters(account=args.account), args.limit)
    except QueryError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from ...privacy.masking import mask_text
    from ...privacy.views import audit_cli_export  # every search is in the access audit, as the API's
    await audit_cli_export(db, "search", {"q": mask_text(args.query), "results": len(page.rows),
                                          "limit": args.limit, **({"account": args.account} if args.account else {})})
    for row in page.rows:
        if args.json:
            print(json.dumps({"message_id": row.id, "conversation_id": row.conversation_id,
                              "account_id": row.account_id, "direction": row.direction, "sender": row.sender,
                              "time": _iso(row.created_at), "created_at": row.created_at, "text": row.text},
                             ensure_ascii=False))
        else:
            text = " ".join((row.text or "").split())
            print(f"{row.id:>9}  conv {row.conversation_id:<7} {_iso(row.created_at)}  {row.direction:<3} "
                  f"{row.account_id:<12} {text[:80]}")
    if not args.json:
        print(f"{len(page.rows)} hit(s)" + (" (more: raise --limit)" if page.next_before else ""), file=sys.stderr)
    return 0
