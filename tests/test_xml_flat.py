"""The flat fast path of the callback XML parser answers exactly what expat answers, or stands aside.

``xmlcodec.parse_flat`` reads the shape nearly every WeChat body has; anything else goes to expat.
Generated documents mix that shape with everything that must send a body to expat (CDATA split in
two, entities, "]]>", carriage returns, forbidden characters, attributes, nesting, comments, junk
after the root), and every answer the fast path gives is compared with expat's.
"""
from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.callbacks import xmlcodec
from tests.conftest import VECTORS_PATH, WECOM
from tests.wechat_client import event_xml, text_xml

TAGS = ["ToUserName", "FromUserName", "CreateTime", "MsgType", "Content", "MsgId", "Event", "xml", "_a1"]
TRICKY = ["]]>", "]", "]]", "&", "&amp;", "<", ">", "\r", "\r\n", "\n", "\t", "\x00", "\x01", "\x0b", "\ufffe",
          "\uffff", "😀", "<![CDATA[", "</Content>", " ", "你好"]

text_values = st.lists(st.one_of(st.sampled_from(TRICKY), st.text(max_size=8)), max_size=5).map("".join)


@st.composite
def element(draw: st.DrawFn) -> str:
    tag = draw(st.sampled_from(TAGS))
    value = draw(text_values)
    form = draw(st.sampled_from(["cdata", "plain", "two_cdata", "mixed", "attr", "nested", "empty", "comment"]))
    inner = {
        "cdata": f"<![CDATA[{value}]]>",
        "plain": value,
        "two_cdata": f"<![CDATA[{value}]]><![CDATA[{value}]]>",
        "mixed": f"{value}<![CDATA[{value}]]>",
        "nested": f"<Item><![CDATA[{value}]]></Item>",
        "empty": "",
        "comment": f"<!--{value}-->",
        "attr": value,
    }[form]
    open_tag = f'<{tag} a="1">' if form == "attr" else f"<{tag}>"
    space = draw(st.sampled_from(["", " ", "\n", "\t", "\r\n"]))
    return f"{space}{open_tag}{inner}</{tag}>"


@st.composite
def document(draw: st.DrawFn) -> bytes:
    head = draw(st.sampled_from(["", "", "", '<?xml version="1.0"?>', " ", "\ufeff", "<!DOCTYPE xml>"]))
    body = "".join(draw(st.lists(element(), max_size=8)))
    tail = draw(st.sampled_from(["", "", "\n", " x", "<!-- c -->", "<xml></xml>", "\r"]))
    root = draw(st.sampled_from(["xml", "xml", "xml", "root"]))
    return f"{head}<{root}>{body}</{root}>{tail}".encode(draw(st.sampled_from(["utf-8", "utf-8", "utf-16"])))


def expat_or_error(data: bytes):
    try:
        return xmlcodec.parse_expat(data)
    except xmlcodec.XmlError:
        return "error"


@settings(max_examples=3000, deadline=None)
@given(document())
def test_fast_path_answers_what_expat_answers_or_stands_aside(data):
    fast = xmlcodec.parse_flat(data)
    if fast is not None:
        assert fast == expat_or_error(data)
    assert (xmlcodec.parse(data) if expat_or_error(data) != "error" else "error") == expat_or_error(data)


def test_wechat_bodies_take_the_fast_path():
    """The bodies the platforms send are the flat shape: the fast path reads them (same dict)."""
    vectors = json.loads(VECTORS_PATH.read_text())
    bodies = [text_xml(WECOM["receive_id"], "wmA", "你好 ]] & <ok>", 1, 1732261000).encode(),
              event_xml(WECOM["receive_id"], "wmA", "kf_msg_or_event", 1732261000, Token="t", OpenKfId="wk").encode(),
              *[v["message"].encode() for v in vectors["encrypt"]],
              b"<xml>\n  <ToUserName><![CDATA[gh_1]]></ToUserName>\n  <CreateTime>1348831860</CreateTime>\n"
              b"  <Content><![CDATA[a]]></Content>\n  <Content>b</Content>\n</xml>\n"]
    for body in bodies:
        fast = xmlcodec.parse_flat(body)
        assert fast is not None, body
        assert fast == xmlcodec.parse_expat(body)
    assert xmlcodec.parse_flat(bodies[-1])["Content"] == ["a", "b"]


@pytest.mark.parametrize("body", [
    b'<?xml version="1.0"?><xml><A>1</A></xml>',  # a declaration (may name another encoding)
    b"<xml><A>&amp;</A></xml>",  # an entity to expand
    b"<xml><A><![CDATA[x]]><![CDATA[y]]></A></xml>",  # two sections
    b"<xml><A>a\r\nb</A></xml>",  # line ends XML normalises
    b"<xml><A><B>1</B></A></xml>",  # nesting
    b'<xml><A b="1">1</A></xml>',  # an attribute
    b"<xml><A>1</A></xml><!-- after -->",  # a comment after the root
    b"<xml><A>\xff</A></xml>",  # not UTF-8
])
def test_other_shapes_go_to_expat(body):
    assert xmlcodec.parse_flat(body) is None
