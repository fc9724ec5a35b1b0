"""微信客服 pulls found by review: a page that says "more" without moving the cursor."""
from __future__ import annotations

import pytest

from hub.outbound.api import PlatformError
from tests.conftest import WECOM
from tests.helpers import messages
from tests.test_kf import KFID, kf_items


async def test_has_more_without_a_new_cursor_does_not_spin(hub, monkeypatch):
    """An answer with has_more 1 but no next_cursor (or the same one) was pulled again at once,
    forever: the same page in a tight loop against the platform's rate limit, holding the kf
    account's pull so no other signal of it ever ran. The page is archived and the pull fails
    (retried later, from the stored cursor) instead of spinning."""
    calls = []
    items = kf_items(2)

    async def sync_msg(account, *, cursor, token, open_kfid, limit):  # noqa: ANN001, ANN202
        calls.append(cursor)
        if len(calls) > 20:  # the spin, cut short so the test ends
            raise AssertionError("pulled the same page again and again")
        return {"errcode": 0, "next_cursor": "", "has_more": 1, "msg_list": items}

    monkeypatch.setattr(hub.kf.api, "kf_sync_msg", sync_msg)
    with pytest.raises(PlatformError):
        await hub.kf.pull(WECOM["id"], KFID, "T1")
    assert calls == [""]
    assert {r.dedup_key for r in await messages(hub, channel="kf")} == {"m:kfmsg-0", "m:kfmsg-1"}
    assert await hub.kf.load_cursor(WECOM["id"], KFID) == ""


async def test_a_kf_customers_profile_comes_from_kf_customer_batchget(hub, monkeypatch):
    """A 微信客服 customer is not the brand's external contact: externalcontact/get refuses their
    external_userid (84061), so kf customers never got their nickname or unionid (no merge with the
    same person's Official Account or WeCom identity). Their profile comes from kf/customer/batchget."""
    account = await hub.accounts.get(WECOM["id"])
    calls: list[tuple[str, str, dict]] = []

    async def call(acc, path, payload):  # noqa: ANN001, ANN202
        calls.append(("POST", path, payload))
        if path == "/cgi-bin/kf/customer/batchget":
            return {"errcode": 0, "customer_list": [{"external_userid": "wmKfBuyer", "nickname": "小王",
                                                     "unionid": "oUnion1"}], "invalid_external_userid": []}
        raise PlatformError(84061, "not external contact")

    async def get(acc, path, params):  # noqa: ANN001, ANN202
        calls.append(("GET", path, params))
        if path == "/cgi-bin/externalcontact/get":
            if params.get("external_userid") == "wmContact":
                return {"errcode": 0, "external_contact": {"name": "老李", "unionid": "oUnion2"}}
            raise PlatformError(84061, "not external contact")
        raise PlatformError(40003, "invalid")

    monkeypatch.setattr(hub.api, "call", call)
    monkeypatch.setattr(hub.api, "get", get)
    assert await hub.api.customer_profile(account, "kf", "wmKfBuyer") == {"unionid": "oUnion1", "name": "小王"}
    assert calls[-1] == ("POST", "/cgi-bin/kf/customer/batchget",
                         {"external_userid_list": ["wmKfBuyer"], "need_enter_session_context": 0})
    # a WeCom external contact still comes from externalcontact/get
    assert await hub.api.customer_profile(account, "wecom", "wmContact") == {"unionid": "oUnion2", "name": "老李"}
