"""Typed, frozen message and event types with one registry.

``from_xml_fields`` turns a parsed callback (WeCom or Official Account) into one of these;
``from_kf_item`` does the same for an item pulled from ``kf/sync_msg``. Every type knows its
archive ``kind``, the customer it belongs to (``peer_id``), its dedup key and its searchable text.
Unknown types become ``Unknown`` and are archived raw, never rejected.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar


# JSON as the archive stores it (one encoder: json.dumps with options builds a new one per call)
compact_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_COMMON = frozenset({"channel", "peer_id", "sent_at", "msg_id", "thread", "direction", "sender", "raw"})
_DATA_FIELDS: dict[type, tuple[str, ...]] = {}


@dataclass(frozen=True, slots=True)
class Inbound:
    """Common fields of everything a platform sends."""

    kind: ClassVar[str] = "unknown"
    channel: str  # wecom | oa | kf
    peer_id: str  # the customer: openid / external_userid
    sent_at: int
    msg_id: str = ""
    thread: str = ""  # open_kfid for 微信客服
    direction: str = "in"
    sender: str = "customer"
    raw: str = field(default="", repr=False, compare=False)

    @property
    def dedup_key(self) -> str:
        return "m:" + self.msg_id if self.msg_id else "e:" + self.event_key()

    def event_key(self) -> str:
        return f"{self.kind}:{self.peer_id}:{self.sent_at}"

    @property
    def text(self) -> str | None:
        return None

    def data(self) -> dict[str, Any]:
        """The type-specific fields (everything but the common ones), for the archive."""
        names = _DATA_FIELDS.get(type(self))
        if names is None:  # (every field is a str or an int: no deep copy needed, unlike asdict)
            names = _DATA_FIELDS[type(self)] = tuple(f.name for f in fields(self) if f.name not in _COMMON)
        out = {}
        for name in names:
            value = getattr(self, name)
            if value != "" and value is not None:
                out[name] = value
        return out

    def data_json(self) -> str:
        return compact_json(self.data())


@dataclass(frozen=True, slots=True)
class Text(Inbound):
    kind: ClassVar[str] = "text"
    content: str = ""

    @property
    def text(self) -> str | None:
        return self.content


@dataclass(frozen=True, slots=True)
class Image(Inbound):
    kind: ClassVar[str] = "image"
    pic_url: str = ""
    media_id: str = ""


@dataclass(frozen=True, slots=True)
class Voice(Inbound):
    kind: ClassVar[str] = "voice"
    media_id: str = ""
    format: str = ""
    recognition: str = ""

    @property
    def text(self) -> str | None:
        return self.recognition or None


@dataclass(frozen=True, slots=True)
class Video(Inbound):
    kind: ClassVar[str] = "video"
    media_id: str = ""
    thumb_media_id: str = ""


@dataclass(frozen=True, slots=True)
class Location(Inbound):
    kind: ClassVar[str] = "location"
    latitude: str = ""
    longitude: str = ""
    scale: str = ""
    label: str = ""

    @property
    def text(self) -> str | None:
        return self.label or None


@dataclass(frozen=True, slots=True)
class Link(Inbound):
    kind: ClassVar[str] = "link"
    title: str = ""
    description: str = ""
    url: str = ""

    @property
    def text(self) -> str | None:
        return " ".join(x for x in (self.title, self.description) if x) or None


@dataclass(frozen=True, slots=True)
class File(Inbound):
    kind: ClassVar[str] = "file"
    media_id: str = ""
    file_name: str = ""


@dataclass(frozen=True, slots=True)
class Unknown(Inbound):
    """A type the hub does not model: archived with its raw payload and answered ``success``."""

    kind: ClassVar[str] = "unknown"
    msg_type: str = ""
    fields_json: str = ""


# ---- events -----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Subscribe(Inbound):
    """A new follower; ``scene`` set when the follow came through a parametric QR code."""

    kind: ClassVar[str] = "event.subscribe"
    scene: str = ""
    ticket: str = ""


@dataclass(frozen=True, slots=True)
class Unsubscribe(Inbound):
    kind: ClassVar[str] = "event.unsubscribe"


@dataclass(frozen=True, slots=True)
class Scan(Inbound):
    """An existing follower scanned a parametric QR code."""

    kind: ClassVar[str] = "event.scan"
    scene: str = ""
    ticket: str = ""

    def event_key(self) -> str:
        return f"{self.kind}:{self.peer_id}:{self.sent_at}:{self.scene}"


@dataclass(frozen=True, slots=True)
class MenuClick(Inbound):
    kind: ClassVar[str] = "event.click"
    key: str = ""

    def event_key(self) -> str:
        return f"{self.kind}:{self.peer_id}:{self.sent_at}:{self.key}"


@dataclass(frozen=True, slots=True)
class ExternalContactChange(Inbound):
    """WeCom ``change_external_contact``: add / edit / del_external_contact, del_follow_user."""

    kind: ClassVar[str] = "event.external_contact"
    change_type: str = ""
    user_id: str = ""  # the staff member
    state: str = ""  # the channel code's state string
    welcome_code: str = ""

    def event_key(self) -> str:
        return f"{self.kind}:{self.change_type}:{self.user_id}:{self.peer_id}:{self.sent_at}"


@dataclass(frozen=True, slots=True)
class KfSignal(Inbound):
    """WeCom ``kf_msg_or_event``: no content, only a signal to pull with ``kf/sync_msg``."""

    kind: ClassVar[str] = "event.kf_msg_or_event"
    token: str = ""
    open_kfid: str = ""

    def event_key(self) -> str:
        return f"{self.kind}:{self.open_kfid}:{self.token or self.sent_at}"


@dataclass(frozen=True, slots=True)
class OtherEvent(Inbound):
    """An event the hub archives but does not act on (LOCATION, VIEW, template results, ...)."""

    kind: ClassVar[str] = "event.other"
    event: str = ""
    event_key_field: str = ""
    fields_json: str = ""  # the event's other fields (ChatId, UpdateDetail, MsgID, Status, ...)

    def event_key(self) -> str:
        # the other fields are in the key: events from "sys" (a customer group changed, a tag edited)
        # or two template results for one user in the same second differ only there, and were
        # collapsed into one; a platform retry repeats them all
        extra = hashlib.sha1(self.fields_json.encode()).hexdigest()[:16] if self.fields_json else ""
        return f"{self.kind}:{self.event}:{self.peer_id}:{self.sent_at}:{self.event_key_field}:{extra}"


# ---- 微信客服 events pulled from kf/sync_msg -------------------------------------------------------

@dataclass(frozen=True, slots=True)
class KfEvent(Inbound):
    """A system event of a WeChat Customer Service session (``origin`` 4)."""

    kind: ClassVar[str] = "event.kf"
    event_type: str = ""
    welcome_code: str = ""
    scene: str = ""
    scene_param: str = ""
    servicer_userid: str = ""
    fail_msgid: str = ""
    recall_msgid: str = ""
    detail_json: str = ""

    @property
    def kind_name(self) -> str:
        return f"event.kf.{self.event_type}"


@dataclass(frozen=True, slots=True)
class Recall(Inbound):
    """A recall of an earlier message: the archive marks the original, never deletes it."""

    kind: ClassVar[str] = "event.recall"
    recalled_msg_id: str = ""
    servicer_userid: str = ""  # 微信客服: a staff member recalled their own message (else the customer did)

    def event_key(self) -> str:
        return f"{self.kind}:{self.peer_id}:{self.recalled_msg_id}"


def kind_of(msg: Inbound) -> str:
    return msg.kind_name if isinstance(msg, KfEvent) else msg.kind


def _s(fields: dict[str, Any], key: str) -> str:
    value = fields.get(key, "")
    return value if isinstance(value, str) else ""


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


_XML_MESSAGES: dict[str, Any] = {
    "text": lambda b, f: Text(**b, content=_s(f, "Content")),
    "image": lambda b, f: Image(**b, pic_url=_s(f, "PicUrl"), media_id=_s(f, "MediaId")),
    "voice": lambda b, f: Voice(**b, media_id=_s(f, "MediaId"), format=_s(f, "Format"),
                                recognition=_s(f, "Recognition")),
    "video": lambda b, f: Video(**b, media_id=_s(f, "MediaId"), thumb_media_id=_s(f, "ThumbMediaId")),
    "shortvideo": lambda b, f: Video(**b, media_id=_s(f, "MediaId"), thumb_media_id=_s(f, "ThumbMediaId")),
    "location": lambda b, f: Location(**b, latitude=_s(f, "Location_X"), longitude=_s(f, "Location_Y"),
                                      scale=_s(f, "Scale"), label=_s(f, "Label")),
    "link": lambda b, f: Link(**b, title=_s(f, "Title"), description=_s(f, "Description"), url=_s(f, "Url")),
}


def _xml_event(channel: str, base: dict[str, Any], f: dict[str, Any]) -> Inbound:
    event = _s(f, "Event")
    low = event.lower()
    key = _s(f, "EventKey")
    if low == "subscribe":
        scene = key[len("qrscene_"):] if key.startswith("qrscene_") else ""
        return Subscribe(**base, scene=scene, ticket=_s(f, "Ticket"))
    if low == "unsubscribe":
        return Unsubscribe(**base)
    if low == "scan":
        return Scan(**base, scene=key, ticket=_s(f, "Ticket"))
    if low == "click":
        return MenuClick(**base, key=key)
    if event == "change_external_contact":
        base["peer_id"] = _s(f, "ExternalUserID")
        base["sender"] = "system"
        return ExternalContactChange(**base, change_type=_s(f, "ChangeType"), user_id=_s(f, "UserID"),
                                     state=_s(f, "State"), welcome_code=_s(f, "WelcomeCode"))
    if event == "kf_msg_or_event":
        base["peer_id"] = ""
        base["sender"] = "system"
        # each kf account's signals in a conversation of their own: jobs run in order per
        # conversation, and one account's failing pull held every other account's behind it
        base["thread"] = _s(f, "OpenKfId")
        return KfSignal(**base, token=_s(f, "Token"), open_kfid=_s(f, "OpenKfId"))
    if low in ("recall", "msg_recall", "revoke"):
        return Recall(**base, recalled_msg_id=_s(f, "RecallMsgId") or _s(f, "PreMsgId"))
    if channel == "wecom" and base["peer_id"] == "sys":
        # WeCom's own events (a customer group or tag changed) come "from" sys: no customer's
        base["peer_id"] = ""
        base["sender"] = "system"
    rest = {k: v for k, v in f.items() if k not in _EVENT_HEAD}
    return OtherEvent(**base, event=event, event_key_field=key, fields_json=compact_json(rest) if rest else "")


# what every event carries (the rest of an event the hub does not act on is kept in its data)
_EVENT_HEAD = frozenset({"ToUserName", "FromUserName", "CreateTime", "MsgType", "Event", "EventKey"})


def from_xml_fields(channel: str, f: dict[str, Any], raw: str = "") -> Inbound:
    """A parsed callback body -> its typed message (never raises for an unknown type)."""
    base: dict[str, Any] = {
        "channel": channel,
        "peer_id": _s(f, "FromUserName"),
        "sent_at": _int(f.get("CreateTime")),
        "msg_id": _s(f, "MsgId") or _s(f, "MsgID"),
        "raw": raw,
    }
    msg_type = _s(f, "MsgType").lower()
    if msg_type == "event":
        base["msg_id"] = ""  # events deduplicate by their event key
        return _xml_event(channel, base, f)
    maker = _XML_MESSAGES.get(msg_type)
    if maker is not None:
        return maker(base, f)
    if msg_type in ("recall", "revoke"):
        return Recall(**base, recalled_msg_id=_s(f, "PreMsgId") or _s(f, "RecallMsgId"))
    return Unknown(**base, msg_type=msg_type,
                   fields_json=compact_json(f))


_KF_ORIGINS = {3: ("in", "customer"), 4: ("in", "system"), 5: ("out", "staff")}


def from_kf_item(item: dict[str, Any]) -> Inbound:
    """An item of ``kf/sync_msg``'s ``msg_list`` -> its typed message."""
    origin = _int(item.get("origin"))
    direction, sender = _KF_ORIGINS.get(origin, ("in", "customer"))
    servicer = str(item.get("servicer_userid") or "")
    if sender == "staff" and servicer:
        sender = f"staff:{servicer}"
    msgtype = str(item.get("msgtype") or "")
    body = item.get(msgtype) if isinstance(item.get(msgtype), dict) else {}
    base: dict[str, Any] = {
        "channel": "kf",
        "peer_id": str(item.get("external_userid") or body.get("external_userid") or ""),
        "sent_at": _int(item.get("send_time")),
        "msg_id": str(item.get("msgid") or ""),
        "thread": str(item.get("open_kfid") or body.get("open_kfid") or ""),
        "direction": direction,
        "sender": sender,
        "raw": compact_json(item),
    }

    def g(key: str) -> str:
        value = body.get(key, "")
        return value if isinstance(value, str) else str(value)

    if msgtype == "text":
        return Text(**base, content=g("content"))
    if msgtype == "image":
        return Image(**base, media_id=g("media_id"))
    if msgtype == "voice":
        return Voice(**base, media_id=g("media_id"))
    if msgtype == "video":
        return Video(**base, media_id=g("media_id"))
    if msgtype == "file":
        return File(**base, media_id=g("media_id"))
    if msgtype == "location":
        return Location(**base, latitude=g("latitude"), longitude=g("longitude"),
                        label=" ".join(x for x in (g("name"), g("address")) if x))
    if msgtype == "link":
        return Link(**base, title=g("title"), description=g("desc"), url=g("url"))
    if msgtype == "event":
        event_type = g("event_type")
        if event_type in ("user_recall_msg", "servicer_recall_msg"):  # the customer's, a staff member's
            return Recall(**base, recalled_msg_id=g("recall_msgid"),
                          servicer_userid=g("servicer_userid") if event_type == "servicer_recall_msg" else "")
        return KfEvent(**base, event_type=event_type, welcome_code=g("welcome_code"), scene=g("scene"),
                       scene_param=g("scene_param"), servicer_userid=g("servicer_userid"),
                       fail_msgid=g("fail_msgid"), recall_msgid=g("recall_msgid"),
                       detail_json=compact_json(body))
    return Unknown(**base, msg_type=msgtype,
                   fields_json=compact_json(body))
