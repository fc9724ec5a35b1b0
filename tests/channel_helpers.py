"""What the channel QR code tests share: the three kinds of code, posting scans and adds, reading
back customers, tags and the day's statistics, and decoding QR images."""
from __future__ import annotations

import re
import struct
import subprocess
import xml.etree.ElementTree as ET
import zlib

from sqlalchemy import select

from hub.app import HUB
from hub.channels.rules import day_of
from hub.models import Conversation
from tests.conftest import OA, WECOM, auth
from tests.wechat_client import event_xml

KFID = "wkChannel01"
WECOM_CODE = {"name": "门店柜台 Store A", "platform": "wecom", "account_id": WECOM["id"], "state": "store-a",
              "staff": ["zhangsan", "lisi"], "tags": ["门店", "到店客"], "welcome_text": "欢迎来到A店！到店出示可领小样。"}
OA_CODE = {"name": "直播间", "platform": "oa", "account_id": OA["id"], "tags": ["直播间"],
           "welcome_text": "感谢关注！直播专属券已放入您的账户。"}
KF_CODE = {"name": "包裹卡", "platform": "kf", "account_id": WECOM["id"], "open_kfid": KFID,
           "scene_param": "parcel card/11", "tags": ["包裹卡"], "welcome_text": "扫包裹卡的朋友您好，售后问题请直接留言。"}


async def create(client, body: dict, status: int = 201) -> dict:  # noqa: ANN001
    resp = await client.post("/api/channels", json=body, headers=auth())
    data = await resp.json()
    assert resp.status == status, data
    return data


async def settle(hub) -> None:  # noqa: ANN001
    await hub.pipeline.drain()
    await hub.outbound.drain()


async def customer_of(hub, peer_id: str) -> tuple[int, str | None]:  # noqa: ANN001
    t = Conversation.__table__
    async with hub.db.read() as conn:
        row = (await conn.execute(select(t.c.customer_id, t.c.channel_code).where(t.c.peer_id == peer_id))).one()
    return row.customer_id, row.channel_code


async def tags_of(client, customer_id: int) -> dict[str, str]:  # noqa: ANN001
    data = await (await client.get(f"/api/customers/{customer_id}", headers=auth())).json()
    return {t["name"]: t["source"] for t in data["tags"]}


async def today(client, code_id: int) -> dict:  # noqa: ANN001
    resp = await client.get(f"/api/channels/{code_id}/stats?days=7", headers=auth())
    assert resp.status == 200
    days = await resp.json()
    assert len(days) == 7 and days[-1]["day"] == day_of(client.server.app[HUB].clock.now())
    return days[-1]


def zbar(path) -> str:  # noqa: ANN001
    out = subprocess.run(["/usr/bin/zbarimg", "--raw", "-q", str(path)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def svg_to_png(svg: bytes, path) -> None:  # noqa: ANN001
    """Rasterise segno's SVG (one path of h-runs per module row) into a PNG zbarimg can read."""
    root = ET.fromstring(svg)
    p = root.find("{http://www.w3.org/2000/svg}path")
    scale = float(re.search(r"scale\(([\d.]+)\)", p.get("transform")).group(1))
    size = int(float(root.get("width")) / scale)
    grid = [[255] * size for _ in range(size)]
    x = y = 0.0
    for op, a, b in re.findall(r"([Mmh])(-?[\d.]+)(?: (-?[\d.]+))?", p.get("d")):
        if op == "M":
            x, y = float(a), float(b)
        elif op == "m":
            x, y = x + float(a), y + float(b)
        else:
            for col in range(int(x), int(x + float(a))):
                grid[int(y)][col] = 0
            x += float(a)
    k = 6
    raw = b"".join(b"\x00" + bytes(v for v in row for _ in range(k)) for row in grid for _ in range(k))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    ihdr = struct.pack(">IIBBBBB", size * k, size * k, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def subscribe(scene: str, who: str, t: int) -> str:
    return event_xml("gh_acme", who, "subscribe", t, EventKey=f"qrscene_{scene}", Ticket="tk")


def add_contact(state: str, who: str, t: int, code: str = "WC-1") -> str:
    return event_xml(WECOM["receive_id"], "sys", "change_external_contact", t, ChangeType="add_external_contact",
                     UserID="zhangsan", ExternalUserID=who, State=state, WelcomeCode=code)


def kf_signal(token: str, t: int) -> str:
    return event_xml(WECOM["receive_id"], "sys", "kf_msg_or_event", t, Token=token, OpenKfId=KFID)


def enter_session(msgid: str, who: str, t: int, scene_param: str) -> dict:
    return {"msgid": msgid, "open_kfid": KFID, "external_userid": who, "send_time": t, "origin": 4,
            "msgtype": "event", "event": {"event_type": "enter_session", "open_kfid": KFID, "external_userid": who,
                                          "scene": "standin", "scene_param": scene_param, "welcome_code": f"KW-{msgid}"}}
