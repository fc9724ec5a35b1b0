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
