"""QR images of channel codes. OA and 微信客服 codes are drawn locally with segno from the URL the
platform answered (that URL is the QR's content). A WeCom contact way's ``qr_code`` is the URL of an
*image* of its code: that image is served as the platform drew it (fetched through the hub's HTTP
session, kept in memory by config_id and URL), never encoded into a new QR code."""
from __future__ import annotations

import asyncio
import io
import re
from collections import OrderedDict
from typing import Any
from urllib.parse import quote

import aiohttp
import segno

from ..errors import HubError
from ..privacy.redact import redact_error

MEDIA = {"png": "image/png", "svg": "image/svg+xml", "jpeg": "image/jpeg", "gif": "image/gif"}
EXTENSION = {"png": "png", "svg": "svg", "jpeg": "jpg", "gif": "gif"}
MAGIC = ((b"\x89PNG\r\n\x1a\n", "png"), (b"\xff\xd8\xff", "jpeg"), (b"GIF87a", "gif"), (b"GIF89a", "gif"))
MAX_IMAGE_BYTES = 2 * 1024 * 1024


def is_platform_image(code: dict[str, Any]) -> bool:
    """True for a WeCom code: its ``qr_url`` is an image of the code, not what the code encodes."""
    return code["platform"] == "wecom"


def content_of(code: dict[str, Any]) -> str:
    """What a locally drawn QR code encodes: OA the ticket's ``url``, 微信客服 the link with its scene_param."""
    if is_platform_image(code):
        raise HubError(409, "no_svg", f"channel {code['id']} is a WeCom contact way: WeCom gives its QR code as "
                                      "an image only, download the PNG")
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


def image_kind(data: bytes) -> str | None:
    """png, jpeg or gif from the image's first bytes; None for anything else."""
    return next((kind for magic, kind in MAGIC if data.startswith(magic)), None)


def content_disposition(code: dict[str, Any], kind: str) -> str:
    """``attachment`` named after the code: an ASCII fallback plus the UTF-8 name (RFC 6266 / 5987)."""
    ext = EXTENSION[kind]
    ascii_name = re.sub(r"[^A-Za-z0-9._-]+", "-", code["name"]).strip("-.") or f"channel-{code['id']}"
    return (f'attachment; filename="{ascii_name}.{ext}"; '
            f"filename*=UTF-8''{quote(code['name'] + '.' + ext, safe='')}")


class PlatformImages:
    """WeCom's QR images by (config_id, URL), in memory: every hub process fetches an image once, and a
    code switched to another contact way (a new config_id / URL) is fetched anew."""

    def __init__(self, session: aiohttp.ClientSession, limit: int = 256):
        self.session = session
        self.limit = limit
        self._images: OrderedDict[tuple[str, str], tuple[bytes, str]] = OrderedDict()

    async def get(self, config_id: str, url: str) -> tuple[bytes, str]:
        """(the image's bytes, its kind); 502 when the platform's image cannot be had."""
        key = (config_id, url)
        if key in self._images:
            self._images.move_to_end(key)
            return self._images[key]
        image = await self._fetch(url)
        self._images[key] = image
        while len(self._images) > self.limit:
            self._images.popitem(last=False)
        return image

    async def _fetch(self, url: str) -> tuple[bytes, str]:
        try:
            async with self.session.get(url) as resp:
                if resp.status != 200:
                    raise _unavailable(f"HTTP {resp.status}")
                data = await _read_at_most(resp, MAX_IMAGE_BYTES)
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
            raise _unavailable(redact_error(exc)) from None
        kind = image_kind(data)
        if kind is None:
            raise _unavailable("the answer is not a PNG, JPEG or GIF image")
        return data, kind


async def _read_at_most(resp: aiohttp.ClientResponse, limit: int) -> bytes:
    data = bytearray()
    async for chunk in resp.content.iter_chunked(64 * 1024):
        data += chunk
        if len(data) > limit:
            raise _unavailable(f"the image is larger than {limit // 1024 // 1024} MB")
    return bytes(data)


def _unavailable(why: str) -> HubError:
    return HubError(502, "qr_image_unavailable", f"the contact way's QR image could not be fetched from WeCom: {why}")
