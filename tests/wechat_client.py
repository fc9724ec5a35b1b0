"""An encrypting test client built from the protocol spec: signs and encrypts callbacks the way
WeCom and the Official Account do (used by the tests and the benchmarks)."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

from hub.callbacks import xmlcodec
from hub.callbacks.crypto import MessageCrypto, sign


@dataclass
class PlatformSim:
    """One platform account as the platform sees it."""

    platform: str  # wecom | oa
    account_id: str
    token: str
    encoding_aes_key: str
    receive_id: str
    clock: Any = None

    def __post_init__(self) -> None:
        self.crypto = MessageCrypto(self.encoding_aes_key, self.receive_id)

    @property
    def path(self) -> str:
        return f"/callbacks/{self.platform}/{self.account_id}"

    def _ts(self) -> str:
        return str(int(self.clock.now() if self.clock else time.time()))

    def encrypted(self, xml: str | bytes, timestamp: str | None = None, nonce: str | None = None,
                  tamper_signature: bool = False) -> tuple[dict[str, str], bytes]:
        """(query, body) of an encrypted-mode POST (WeCom, or OA with encrypt_type=aes)."""
        timestamp = timestamp or self._ts()
        nonce = nonce or os.urandom(4).hex()
        encrypt = self.crypto.encrypt(xml)
        signature = sign(self.token, timestamp, nonce, encrypt)
        if tamper_signature:
            signature = "0" * 40
        query = {"msg_signature": signature, "timestamp": timestamp, "nonce": nonce}
        if self.platform == "oa":
            query.update(encrypt_type="aes", signature=sign(self.token, timestamp, nonce))
        body = f"<xml><ToUserName><![CDATA[{self.receive_id}]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
        return query, body.encode()

    def plain(self, xml: str | bytes, timestamp: str | None = None, nonce: str | None = None) -> tuple[dict[str, str], bytes]:
        """(query, body) of an Official Account plaintext-mode POST."""
        timestamp = timestamp or self._ts()
        nonce = nonce or os.urandom(4).hex()
        query = {"signature": sign(self.token, timestamp, nonce), "timestamp": timestamp, "nonce": nonce}
        return query, xml.encode() if isinstance(xml, str) else xml

    def verify_query(self, echo: str, encrypted: bool) -> dict[str, str]:
        timestamp, nonce = self._ts(), os.urandom(4).hex()
        if encrypted:
            echostr = self.crypto.encrypt(echo)
            return {"msg_signature": sign(self.token, timestamp, nonce, echostr), "timestamp": timestamp,
                    "nonce": nonce, "echostr": echostr}
        return {"signature": sign(self.token, timestamp, nonce), "timestamp": timestamp, "nonce": nonce,
                "echostr": echo}


def text_xml(to: str, frm: str, content: str, msg_id: int | str, create_time: int | None = None) -> str:
    return xmlcodec.render({"ToUserName": to, "FromUserName": frm, "CreateTime": create_time or int(time.time()),
                            "MsgType": "text", "Content": content, "MsgId": str(msg_id)})


def event_xml(to: str, frm: str, event: str, create_time: int | None = None, **extra: Any) -> str:
    fields = {"ToUserName": to, "FromUserName": frm, "CreateTime": create_time or int(time.time()),
              "MsgType": "event", "Event": event}
    fields.update(extra)
    return xmlcodec.render(fields)
