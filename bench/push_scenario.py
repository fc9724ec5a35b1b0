"""The push bench's scenario (bench/push.py): the target it is held to, the hub config (the bench
WeCom account, group g1, timeouts long enough that no session moves), the agents and FAQ written into
a fresh database, the customers' questions, and the bench ids (``[b<id>]`` / ``[n<id>]`` at the start
of a text) that tie a received event back to the callback that caused it."""
from __future__ import annotations

import base64
import hashlib
import os
import random
import re
from pathlib import Path

from bench.harness import ACCOUNT, AES_KEY, CORP_ID, ROOT, TOKEN, question

PASSWORD = "push-bench-password"
GROUP = "g1"
TARGET_RATE, TARGET_P99_MS = 1000, 100.0
FAQ_FILE = ROOT / "tests" / "fixtures" / "faq_zh.json"
ID_RE = re.compile(r"^\[([bn])(\d+)\]")
MSGID_BASE = {"b": 7_400_000_000_000_000_000, "n": 7_500_000_000_000_000_000}


def cheap_hash(password: str) -> str:
    """hub.users' scrypt format with cheap parameters (verify_password reads them from the hash)."""
    salt = os.urandom(16)
    n, r, p = 2 ** 10, 8, 1
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, n=n, r=r, p=p)
    return f"scrypt${n}${r}${p}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def write_config(path: Path) -> None:
    path.write_text(f"""# bench/push.py
[settings]
default_group = "{GROUP}"
queue_notify = false
accept_timeout = 3600
unanswered_minutes = 60

[[accounts]]
id = "{ACCOUNT}"
platform = "wecom"
name = "Push Bench Corp"
token = "{TOKEN}"
encoding_aes_key = "{AES_KEY}"
receive_id = "{CORP_ID}"
secret = "bench-corp-secret"
""", encoding="utf-8")


async def prepare_db(db_url: str, agents: int, cap: int, customers: int, seed: int) -> tuple[list[str], list[tuple]]:
    """Agents and FAQ into a fresh database (before the hub starts); returns (usernames, new-customer items)."""
    import hub.users as hub_users
    from hub.clock import Clock
    from hub.db import Database
    from hub.knowledge import io as faq_io
    from hub.knowledge.store import KnowledgeBase

    db = Database(db_url)
    await db.create_schema()
    clock = Clock()
    stored = cheap_hash(PASSWORD)
    real_hash = hub_users.hash_password
    hub_users.hash_password = lambda _pw: stored  # one hash for everyone (add_user is otherwise unchanged)
    names = [f"pa{i:03d}" for i in range(agents)]
    try:
        for name in names:
            await hub_users.add_user(db, clock, username=name, password=PASSWORD, role="agent",
                                     display_name=f"Agent {name}", groups=[GROUP], cap=cap)
    finally:
        hub_users.hash_password = real_hash
    kb = KnowledgeBase(db, clock)
    await kb.load()
    parsed = faq_io.parse_file(FAQ_FILE.name, FAQ_FILE.read_text(encoding="utf-8"))
    await kb.create_many(parsed.items)
    # first messages of new customers: realistic questions the FAQ is not confident about (so they
    # go to a human after the bots looked them up); some get suggestions
    rng = random.Random(seed)
    items = []
    suggested = 0
    for idx in range(customers):
        peer = f"wmPush{idx:05d}x{rng.randrange(16 ** 6):06x}"
        text = None
        for _ in range(8):
            cand = f"[n{idx}] {question(rng)}"
            matches = kb.match(cand)
            if not kb.is_confident(matches):
                text = cand
                suggested += bool(kb.suggestions(matches))
                break
        items.append((idx, peer, text or f"[n{idx}] 你好，我上次买的东西想咨询一下"))
    await db.dispose()
    print(f"setup   : {agents} agents (group {GROUP}, cap {cap}), {len(parsed.items)} FAQ entries, "
          f"{customers} new customers ({suggested} with FAQ suggestions, none FAQ-confident)")
    return names, items
