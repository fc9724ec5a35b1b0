"""QR images of channel codes, rendered locally with segno (no call to the platform's image URLs)."""
from __future__ import annotations

import io
import re
from typing import Any
from urllib.parse import quote

import segno

from ..errors import HubError

MEDIA = {"png": "image/png", "svg": "image/svg+xml"}


def content_of(code: dict[str, Any]) -> str:
    """What the QR code encodes: WeCom the contact way's qr_code URL, OA the ticket's ``url``, 微信客服
    the link with its scene_param."""
    value = code.get("link_url") if code["platform"] == "kf" else code.get("qr_url")
    if not value:
        raise HubError(409, "no_qr_content", f"channel {code['id']} has no URL from the platform")
    return value


def render(content: str, kind: str, scale: int = 10) -> bytes:
    qr = segno.make(content, error="m", micro=False)
    buf = io.BytesIO()
    if kind == "png":
        qr.save(buf, kind="png", scale=scale, border=4)
    else:
        qr.save(buf, kind="svg", scale=max(1, scale // 2), border=4, xmldecl=True, svgns=True,
                title=None, unit=None)
    return buf.getvalue()


def content_disposition(code: dict[str, Any], kind: str) -> str:
    """``attachment`` named after the code: an ASCII fallback plus the UTF-8 name (RFC 6266 / 5987)."""
    ascii_name = re.sub(r"[^A-Za-z0-9._-]+", "-", code["name"]).strip("-.") or f"channel-{code['id']}"
    return (f'attachment; filename="{ascii_name}.{kind}"; '
            f"filename*=UTF-8''{quote(code['name'] + '.' + kind, safe='')}")
