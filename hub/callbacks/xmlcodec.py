"""Hardened, fast XML for WeChat callbacks: expat (C) with DTDs and entities refused.

WeChat bodies are a flat ``<xml>`` of CDATA elements with the odd nested block
(``SendPicsInfo``, ``ScanCodeInfo``); ``parse`` turns one into a dict of strings,
with nested elements as dicts and repeated elements as lists.

Nearly every body is the flat kind, so ``parse`` first tries ``parse_flat``: a strict reading of
exactly that shape (``<xml>`` holding only ``<Tag>`` elements of one CDATA section or of plain
text with nothing to unescape). It gives the same dict as expat in about two thirds of the time.
Anything else (a declaration, a DTD, entities, attributes, nesting, comments, a carriage return, a
character XML forbids) is not that shape, and expat reads it (or refuses it).
"""
from __future__ import annotations

import re
from typing import Any, Union
from xml.parsers import expat

MAX_BODY = 64 * 1024  # WeChat callbacks are a few hundred bytes; 64 KiB is generous
# WeChat nests three levels at most (SendPicsInfo > PicList > item); 1,000 levels of an unknown type's
# field, archived as JSON, exceeded Python's recursion limit: a 500 the platform retried for ever
MAX_DEPTH = 32

XmlValue = Union[str, dict[str, Any], list[Any]]


class XmlError(ValueError):
    """Malformed, oversize or hostile XML (maps to HTTP 400 / 413)."""


class XmlTooLarge(XmlError):
    pass


def _refuse(*_args: Any) -> None:
    raise XmlError("DTDs and entities are not accepted")


def parse(data: bytes | str, max_bytes: int = MAX_BODY) -> dict[str, XmlValue]:
    """Parse a WeChat XML document into a dict (the root element's children)."""
    if isinstance(data, str):
        data = data.encode()
    if len(data) > max_bytes:
        raise XmlTooLarge(f"XML body over {max_bytes} bytes")
    flat = parse_flat(data)
    return flat if flat is not None else parse_expat(data)


# the flat shape: <xml>, then children each holding one CDATA section (no "]]>" inside) or plain
# text with no markup, no entity and no "]", each after optional whitespace, then </xml>
_FLAT_CDATA = r"<!\[CDATA\[{}[^\]]*(?:\](?!\]>)[^\]]*)*)\]\]>"  # {} opens the group
_FLAT_CHILD = r"[ \t\n]*<([A-Za-z_][A-Za-z0-9_]*)>(?:" + _FLAT_CDATA + r"|{}[^<&\]]*))</\1>"
_FLAT_DOC = re.compile(r"<xml>(?:" + _FLAT_CHILD.format("(?:", "(?:") + r")*[ \t\n]*</xml>[ \t\n]*")
_FLAT_CHILDREN = re.compile(_FLAT_CHILD.format("(", "("))
# bytes XML does not pass through unchanged: "\r" (line ends are normalised) and the control
# characters XML 1.0 forbids; U+FFFE and U+FFFF (also forbidden) are looked for in UTF-8, where
# there is any (an envelope is ASCII, base64: the two scans were a quarter of its parse)
_NOT_VERBATIM = bytes(range(0x09)) + bytes(range(0x0B, 0x20))


def parse_flat(data: bytes) -> dict[str, XmlValue] | None:
    """The dict of a flat ``<xml>`` document, or None when the body is not exactly that shape
    (then ``parse_expat`` decides). Where it answers, it answers what expat would."""
    if (not data.startswith(b"<xml>") or len(data.translate(None, _NOT_VERBATIM)) != len(data)
            or not data.isascii() and (b"\xef\xbf\xbe" in data or b"\xef\xbf\xbf" in data)):
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if _FLAT_DOC.fullmatch(text) is None:
        return None
    children = _FLAT_CHILDREN.findall(text, 5)
    out: dict[str, Any] = {tag: cdata or plain for tag, cdata, plain in children}
    if len(out) != len(children):  # a repeated tag: its values become a list
        out = {}
        for tag, cdata, plain in children:
            _add(out, tag, cdata or plain)
    return out


def _add(parent: dict[str, Any], tag: str, value: XmlValue) -> None:
    """A child element into its parent's dict: a repeated tag becomes a list."""
    prev = parent.get(tag)
    if prev is None:
        parent[tag] = value
    elif isinstance(prev, list):
        prev.append(value)
    else:
        parent[tag] = [prev, value]


def parse_expat(data: bytes) -> dict[str, XmlValue]:
    """Any WeChat XML document, through expat with DTDs and entities refused: a root ``<xml>`` at most
    ``MAX_DEPTH`` levels deep (UTF-8, or UTF-16 with its byte order mark: expat follows it)."""
    parser = expat.ParserCreate("utf-8")
    parser.buffer_text = True
    parser.StartDoctypeDeclHandler = _refuse
    parser.EntityDeclHandler = _refuse
    parser.UnparsedEntityDeclHandler = _refuse
    parser.ExternalEntityRefHandler = _refuse
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)

    # stack of [children dict, text parts] per open element; the root's dict is the result
    stack: list[list[Any]] = []
    result: list[dict[str, Any]] = []

    def start(tag: str, _attrs: dict[str, str]) -> None:
        if not stack and (tag != "xml" or result):
            raise XmlError(f"the root element must be <xml>, not <{tag}>")
        if len(stack) >= MAX_DEPTH:
            raise XmlError(f"XML nested over {MAX_DEPTH} levels")
        stack.append([{}, []])

    def end(tag: str) -> None:
        children, parts = stack.pop()
        if not stack:
            result.append(children)
            return
        _add(stack[-1][0], tag, children if children else "".join(parts))

    def chars(text: str) -> None:
        if stack:
            stack[-1][1].append(text)

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = chars
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        raise XmlError(f"malformed XML: {exc}") from exc
    if not result:
        raise XmlError("no root element")
    return result[0]


def body_text(data: bytes) -> str:
    """A body as text for the archive: UTF-8, or UTF-16 after its byte order mark (as expat read it)."""
    encoding = "utf-16" if data.startswith((b"\xff\xfe", b"\xfe\xff")) else "utf-8"
    return data.decode(encoding, "replace").replace("\x00", "\ufffd")  # PostgreSQL cannot store a NUL


def _escape_cdata(text: str) -> str:
    return text.replace("]]>", "]]]]><![CDATA[>")


def render(fields: dict[str, Any], root: str = "xml") -> str:
    """Render a dict as WeChat XML (CDATA for strings, bare numbers for ints)."""
    parts = [f"<{root}>"]
    for key, value in fields.items():
        if isinstance(value, dict):
            parts.append(render(value, key))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            parts.append(f"<{key}>{value}</{key}>")
        else:
            parts.append(f"<{key}><![CDATA[{_escape_cdata(str(value))}]]></{key}>")
    parts.append(f"</{root}>")
    return "".join(parts)
