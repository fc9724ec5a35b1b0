"""Hardened, fast XML for WeChat callbacks: expat (C) with DTDs and entities refused.

WeChat bodies are a flat ``<xml>`` of CDATA elements with the odd nested block
(``SendPicsInfo``, ``ScanCodeInfo``); ``parse`` turns one into a dict of strings,
with nested elements as dicts and repeated elements as lists.
"""
from __future__ import annotations

from typing import Any, Union
from xml.parsers import expat

MAX_BODY = 64 * 1024  # WeChat callbacks are a few hundred bytes; 64 KiB is generous

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

    def start(_tag: str, _attrs: dict[str, str]) -> None:
        stack.append([{}, []])

    def end(tag: str) -> None:
        children, parts = stack.pop()
        if not stack:
            result.append(children)
            return
        value: XmlValue = children if children else "".join(parts)
        parent = stack[-1][0]
        prev = parent.get(tag)
        if prev is None:
            parent[tag] = value
        elif isinstance(prev, list):
            prev.append(value)
        else:
            parent[tag] = [prev, value]

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
