"""Command line of the privacy module (wired into ``python -m hub`` by hub/cli.py):

* ``customers erase (--customer ID | --identity KIND:VALUE [--account ID]) --requester TEXT --by USER [--reason TEXT]``
* ``secrets rotate [--old KEY] [--new KEY]`` (default: ``$HUB_SECRET_KEY_OLD`` / ``$HUB_SECRET_KEY_NEW``;
  several old keys comma-separated) — re-encrypts every account's secrets; then restart with
  ``HUB_SECRET_KEY`` = the new key. ``secrets status``: which key each account is under.
* ``privacy purge [--dry-run]`` — one retention purge now; prints the run record.

Keys are read from the environment by preference: a key on the command line shows in ``ps``.
Each command writes its audit-log entry, as the console's actions do (actor ``cli:BY`` / ``cli``).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from types import SimpleNamespace
from typing import Any, Awaitable, Callable

DbAdder = Callable[[argparse.ArgumentParser], None]
CLI = SimpleNamespace(id=None, username="cli", role="cli")  # the audit log's actor of a command (erase: cli:BY)


def add_parsers(sub: Any, add_db: DbAdder) -> None:
    customers = sub.add_parser("customers", help="customers: erasure on request (PIPL)")
    c_sub = customers.add_subparsers(dest="action", metavar="ACTION", required=True)
    erase = c_sub.add_parser("erase", help="erase a customer: messages, orders, identities ... (a record stays)")
    add_db(erase)
    who = erase.add_mutually_exclusive_group(required=True)
    who.add_argument("--customer", type=int, help="customer id")
    who.add_argument("--identity", help="KIND:VALUE, e.g. phone:13812345678 or openid:oXYZ")
    erase.add_argument("--account", help="account id of an openid / external_userid identity")
    erase.add_argument("--requester", required=True, help="who asked (kept in the erasure record)")
    erase.add_argument("--by", required=True, help="who does it (your name)")
    erase.add_argument("--reason", default="")

    secrets = sub.add_parser("secrets", help="platform secrets encrypted at rest (HUB_SECRET_KEY)")
    s_sub = secrets.add_subparsers(dest="action", metavar="ACTION", required=True)
    rot = s_sub.add_parser("rotate", help="re-encrypt every account's secrets under a new key")
    add_db(rot)
    rot.add_argument("--old", help="current key(s), comma-separated (default $HUB_SECRET_KEY_OLD or $HUB_SECRET_KEY)")
    rot.add_argument("--new", help="the new key (default $HUB_SECRET_KEY_NEW)")
    add_db(s_sub.add_parser("status", help="which key each account's secrets are under"))

    privacy = sub.add_parser("privacy", help="retention purge")
    p_sub = privacy.add_subparsers(dest="action", metavar="ACTION", required=True)
    purge = p_sub.add_parser("purge", help="remove what is past its retention time, now")
    add_db(purge)
    purge.add_argument("--dry-run", action="store_true", help="count only")


def _print(value: Any) -> None:
    print(json.dumps(value, ensure_ascii=False, indent=1))


def run(args: argparse.Namespace, with_db: Callable[[Callable[[Any], Awaitable[int]]], int]) -> int:
    """Dispatch ``customers`` / ``secrets`` / ``privacy``; ``with_db(fn)`` runs ``fn(db)`` on the database."""
    from .. import audit
    from ..clock import Clock
    from ..errors import HubError
    from . import erasure
    from .secrets import KeyRing, SecretKeyError, rotate
    clock = Clock()

    async def erase(db: Any) -> int:
        if args.identity:
            kind, sep, value = args.identity.partition(":")
            if not sep or not kind or not value:
                print("--identity is KIND:VALUE", file=sys.stderr)
                return 2
            customer_id = await erasure.customer_for_identity(db, kind, value, args.account)
        else:
            customer_id = args.customer
        record = await erasure.erase_customer(db, clock, erasure.ErasureRequest(
            customer_id, args.requester, f"cli:{args.by}"[:64], args.reason))
        # in the audit log as the console's erasure is (hub/privacy/api.py), by who ran the command
        by = SimpleNamespace(id=None, username=f"cli:{args.by}", role="cli")
        await audit.record(db, clock, actor=by, action="customer.erase", target=f"customer:{customer_id}",
                           after={"erasure": record["id"], "counts": record["counts"]})
        _print(record)
        return 0

    async def do_rotate(db: Any) -> int:
        old = args.old or os.environ.get("HUB_SECRET_KEY_OLD") or os.environ.get("HUB_SECRET_KEY", "")
        new = args.new or os.environ.get("HUB_SECRET_KEY_NEW", "")
        if not old or not new:
            print("give the current key (--old / $HUB_SECRET_KEY_OLD) and the new one (--new / $HUB_SECRET_KEY_NEW)",
                  file=sys.stderr)
            return 2
        ring_new = KeyRing.of(new)
        counts: dict[str, int] = {}
        n = await rotate(db, KeyRing.of(*old.split(",")), ring_new, clock.now(), counts)
        await audit.record(db, clock, actor=CLI, action="secrets.rotate", target=f"key:{ring_new.current_id}",
                           after={"accounts": n, "order_secrets": counts.get("order_secrets", 0)})
        print(f"re-encrypted the secrets of {n} account(s) and {counts.get('order_secrets', 0)} order-source "
              f"secret(s) under key {ring_new.current_id}; restart the hub with HUB_SECRET_KEY set to the new key")
        return 0

    async def status(db: Any) -> int:
        from sqlalchemy import select

        from ..models import AccountSecret
        t = AccountSecret.__table__
        async with db.read() as conn:
            rows = (await conn.execute(select(t.c.account_id, t.c.key_id, t.c.updated_at))).all()
        _print([{"account_id": r.account_id, "key_id": r.key_id, "updated_at": r.updated_at} for r in rows])
        return 0

    async def purge(db: Any) -> int:
        from .purge import Purger
        run = await Purger(db, clock).run_once(dry_run=args.dry_run, by="cli")
        await audit.record(db, clock, actor=CLI, action="retention.purge", target=f"purge:{run['id']}",
                           after={"dry_run": args.dry_run, "counts": run["counts"]})
        _print(run)
        return 0

    fn = {("customers", "erase"): erase, ("secrets", "rotate"): do_rotate, ("secrets", "status"): status,
          ("privacy", "purge"): purge}[(args.command, args.action)]
    try:
        return with_db(fn)
    except HubError as exc:
        print(f"error: {exc.as_json().get('message', exc)}", file=sys.stderr)
        return 1
    except SecretKeyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
