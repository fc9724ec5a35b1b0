"""Bad input at scale: random and mutated callback bodies (XML, ciphertext, base64, signatures),
generated with hypothesis from the valid fixtures and the shared known-answer vectors.

Against the pure parsers (many examples): only their own errors come out (XmlError, CryptoError),
never anything else. Against the real HTTP endpoints of both platforms (fewer examples, each a real
request; the mutated plaintext is validly signed and encrypted, so it reaches the parser and the
archive): never a 500, the hub still answers /healthz, and the archive holds no half-record (every
stored message has its conversation and its job, or its job has run; required fields are filled).

HUB_FUZZ_EXAMPLES=N multiplies the example counts for long runs (default 1)."""
from __future__ import annotations

import base64
import json
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from hub.app import HUB
from hub.callbacks import xmlcodec
from hub.callbacks.crypto import CryptoError, MessageCrypto, check_signature, sign
from hub.messages import from_xml_fields
from hub.models import Conversation, Job, Message
from tests.conftest import OA, VECTORS_PATH, WECOM
from tests.wechat_client import PlatformSim, event_xml, text_xml

SCALE = max(1, int(os.environ.get("HUB_FUZZ_EXAMPLES", "1")))
VECTORS = json.loads(VECTORS_PATH.read_text())

SEEDS: list[bytes] = [
    text_xml(WECOM["receive_id"], "wmFuzz", "你好，我想问一下订单", 7001, 1732261000).encode(),
    event_xml(OA["receive_id"], "oFuzz", "subscribe", 1732261000, EventKey="qrscene_fuzz").encode(),
    event_xml(WECOM["receive_id"], "wmFuzz", "kf_msg_or_event", 1732261000, Token="tok", OpenKfId="wkFuzz").encode(),
    *[v["message"].encode() for v in VECTORS["encrypt"]],
    *[v["body"].encode() for v in VECTORS["bad_xml"]],
]

HOSTILE = [
    b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>',
    b'<!DOCTYPE x SYSTEM "file:///etc/passwd">', b'<!ENTITY xxe SYSTEM "http://127.0.0.1/">', b"&xxe;", b"&a;",
    b"]]>", b"<![CDATA[", b"\x00", b"\xff\xfe", b"\xef\xbb\xbf", b"<?xml version='1.0' encoding='gbk'?>",
    b"<?xml version='1.0' encoding='utf-16'?>", b"<?xml version='1.0' encoding='x-unknown'?>",
    b"<a>" * 2000, b"</xml>", b'<Content a="' + b"x" * 30000 + b'">', b"<MsgType>event</MsgType>",
    b"<CreateTime>99999999999999999999999</CreateTime>", b"<MsgId>-1</MsgId>", "<Content>😀\u202e</Content>".encode(),
]


@st.composite
def mutated(draw: st.DrawFn, seeds: list[bytes] = SEEDS) -> bytes:
    """A valid seed put through 1-4 mutations: flips, cuts, splices, hostile inserts, re-encodings."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "truncate", "delete", "insert", "hostile", "duplicate", "encode"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "truncate":
            del data[at:]
        elif op == "delete":
            del data[at:at + draw(st.integers(1, 64))]
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=64))
        elif op == "hostile":
            data[at:at] = draw(st.sampled_from(HOSTILE))
        elif op == "duplicate":
            data[at:at] = data[at:at + draw(st.integers(1, 256))] * draw(st.integers(2, 50))
        elif op == "encode":
            text = bytes(data).decode("utf-8", "replace")
            data = bytearray(text.encode(draw(st.sampled_from(["utf-16", "utf-16-be", "gb18030", "latin-1"])),
                                         "replace"))
    return bytes(data)


xml_inputs = st.one_of(mutated(), st.binary(max_size=2048), st.text(max_size=512).map(str.encode))


# -- the pure parsers, many examples ------------------------------------------------------------------

@settings(max_examples=600 * SCALE, deadline=None)
@given(xml_inputs)
def test_xml_parser_raises_only_its_own_error(data):
    try:
        fields = xmlcodec.parse(data, 64 * 1024)
    except xmlcodec.XmlError:
        return
    assert isinstance(fields, dict)
    for channel in ("wecom", "oa"):
        msg = from_xml_fields(channel, fields, data.decode("utf-8", "replace"))  # never raises
        assert msg.channel == channel and isinstance(msg.peer_id, str) and isinstance(msg.sent_at, int)


CRYPTO = MessageCrypto(WECOM["encoding_aes_key"], WECOM["receive_id"])
VALID_CIPHERTEXTS = [v["encrypt"] for v in VECTORS["encrypt"]] + [CRYPTO.encrypt(s) for s in SEEDS[:3]]


@st.composite
def mutated_ciphertext(draw: st.DrawFn) -> str:
    raw = bytearray(base64.b64decode(draw(st.sampled_from(VALID_CIPHERTEXTS))))
    op = draw(st.sampled_from(["flip", "truncate", "extend", "b64text", "random"]))
    if op == "flip":
        raw[draw(st.integers(0, len(raw) - 1))] ^= 1 << draw(st.integers(0, 7))
    elif op == "truncate":
        del raw[draw(st.integers(0, len(raw) - 1)):]
    elif op == "extend":
        raw += draw(st.binary(min_size=1, max_size=48))
    encoded = base64.b64encode(bytes(raw)).decode()
    if op == "b64text":
        at = draw(st.integers(0, len(encoded)))
        encoded = encoded[:at] + draw(st.text(max_size=8)) + encoded[at:]
    if op == "random":
        encoded = draw(st.one_of(st.text(max_size=300), st.binary(max_size=300).map(lambda b: base64.b64encode(b).decode())))
    return encoded


@settings(max_examples=600 * SCALE, deadline=None)
@given(mutated_ciphertext())
def test_decrypt_raises_only_crypto_error(ciphertext):
    try:
        plain = CRYPTO.decrypt(ciphertext)
    except CryptoError:
        return
    assert ciphertext in VALID_CIPHERTEXTS or isinstance(plain, bytes)  # the receive id matched: a real message


@settings(max_examples=300 * SCALE, deadline=None)
@given(st.one_of(st.none(), st.text(max_size=64)), st.text(max_size=32), st.text(max_size=32))
def test_signature_check_never_raises(signature, timestamp, nonce):
    ok = check_signature(signature, WECOM["token"], timestamp, nonce, "x")
    assert ok == (signature == sign(WECOM["token"], timestamp, nonce, "x"))


# -- the real HTTP endpoints ------------------------------------------------------------------------

HTTP = settings(max_examples=40 * SCALE, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
ACCEPTED = {200, 400, 401, 404, 413}


async def assert_archive_whole(client) -> None:  # noqa: ANN001
    """The hub answers, and every archived message is a whole record with its conversation and job."""
    assert (await client.get("/healthz")).status == 200
    hub = client.server.app[HUB]
    await hub.pipeline.drain()
    m, c, j = Message.__table__, Conversation.__table__, Job.__table__
    async with hub.db.read() as conn:
        rows = (await conn.execute(select(m.c.id, m.c.account_id, m.c.conversation_id, m.c.direction, m.c.kind,
                                          m.c.peer_id, m.c.sender, m.c.channel)
                                   .where(m.c.direction == "in"))).all()
        convs = {r.id: r for r in (await conn.execute(select(c.c.id, c.c.account_id, c.c.peer_id))).all()}
        stuck = (await conn.execute(select(func.count()).select_from(j).where(j.c.state == "pending"))).scalar()
    for r in rows:
        assert r.account_id in (WECOM["id"], OA["id"]) and r.channel in ("wecom", "oa", "kf"), r
        assert r.kind and r.sender, r
        conv = convs.get(r.conversation_id)
        assert conv is not None and conv.account_id == r.account_id and conv.peer_id == r.peer_id, r
    assert stuck == 0  # every job of an acknowledged message ran (none left half-done)


def wecom_sim(clock) -> PlatformSim:  # noqa: ANN001
    return PlatformSim("wecom", WECOM["id"], WECOM["token"], WECOM["encoding_aes_key"], WECOM["receive_id"], clock)


def oa_sim(clock) -> PlatformSim:  # noqa: ANN001
    return PlatformSim("oa", OA["id"], OA["token"], OA["encoding_aes_key"], OA["receive_id"], clock)


@HTTP
@given(plain=mutated(), platform=st.sampled_from(["wecom", "oa"]))
async def test_http_signed_and_encrypted_mutated_xml(client, clock, plain, platform):
    """Mutated plaintext, validly signed and encrypted: it reaches the parser and the archive."""
    sim = wecom_sim(clock) if platform == "wecom" else oa_sim(clock)
    query, body = sim.encrypted(plain)
    r = await client.post(sim.path, params=query, data=body)
    assert r.status in ACCEPTED, (r.status, await r.text())
    if r.status == 200:
        assert await r.text() == "success"
    await assert_archive_whole(client)


@HTTP
@given(body=mutated())
async def test_http_oa_plaintext_mode_mutated_xml(client, clock, body):
    """The Official Account's plaintext mode signs only timestamp+nonce: the body goes straight to the parser."""
    sim = oa_sim(clock)
    query, data = sim.plain(body)
    r = await client.post(sim.path, params=query, data=data)
    assert r.status in ACCEPTED, (r.status, await r.text())
    await assert_archive_whole(client)


@HTTP
@given(ciphertext=mutated_ciphertext(), envelope=st.sampled_from(["good", "mutated", "random"]),
       signature=st.sampled_from(["right", "wrong", "missing", "garbage"]), data=st.data())
async def test_http_mutated_ciphertext_envelopes_and_signatures(client, clock, ciphertext, envelope, signature, data):
    sim = wecom_sim(clock)
    timestamp, nonce = str(int(clock.now())), "fuzz"
    body = f"<xml><ToUserName><![CDATA[{WECOM['receive_id']}]]></ToUserName><Encrypt><![CDATA[{ciphertext}]]></Encrypt></xml>".encode()
    if envelope == "mutated":
        body = data.draw(mutated([body]))
    elif envelope == "random":
        body = data.draw(st.binary(max_size=1024))
    query = {"timestamp": timestamp, "nonce": nonce,
             "msg_signature": {"right": sign(sim.token, timestamp, nonce, ciphertext), "wrong": "0" * 40,
                               "missing": "", "garbage": data.draw(st.text(max_size=60))}[signature]}
    r = await client.post(sim.path, params=query, data=body)
    assert r.status in ACCEPTED, (r.status, await r.text())
    if signature != "right":
        assert r.status in (400, 401)
    await assert_archive_whole(client)



async def test_utf16_body_is_archived_on_every_database(client, clock):
    """Found by the fuzzer on PostgreSQL: a UTF-16 body parses, but its raw text held NULs, which
    PostgreSQL refuses, so the callback got 503 forever (a message the platform retries and never lands)."""
    sim = wecom_sim(clock)
    body = text_xml(WECOM["receive_id"], "wmUtf16", "你好", 7301, 1732261000).encode("utf-16")
    query, data = sim.encrypted(body)
    r = await client.post(sim.path, params=query, data=data)
    assert r.status == 200, await r.text()
    hub = client.server.app[HUB]
    m = Message.__table__
    async with hub.db.read() as conn:
        row = (await conn.execute(select(m.c.text, m.c.raw).where(m.c.peer_id == "wmUtf16"))).one()
    assert row.text == "你好" and "\x00" not in row.raw and "<Content><![CDATA[你好]]></Content>" in row.raw
    await assert_archive_whole(client)
