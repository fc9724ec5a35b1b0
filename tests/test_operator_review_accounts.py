"""Platform accounts: the Token is what the WeCom / Official Account console accepts, 3 to 32 English letters
or digits; ``str.isalnum`` let Chinese characters and full-width digits through, a Token that cannot be pasted
into the platform (every callback would then fail its signature)."""
from __future__ import annotations

from tests.conftest import WECOM, auth

NEW = {"id": "shop-oa", "platform": "oa", "name": "门店公众号", "receive_id": "wx00112233445566",
       "encoding_aes_key": "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"}


async def test_a_token_must_be_english_letters_or_digits(client, hub):
    for token in ("门店令牌abc", "１２３４５６", "abcé12", "ab"):
        resp = await client.post("/api/accounts", json={**NEW, "token": token}, headers=auth())
        err = await resp.json()
        assert resp.status == 400 and err["field"] == "token", (token, err)
        edit = await client.put(f"/api/accounts/{WECOM['id']}", json={"token": token}, headers=auth())
        assert edit.status == 400 and (await edit.json())["field"] == "token", token
    assert await hub.accounts.get("shop-oa") is None
    assert (await hub.accounts.get(WECOM["id"])).token == WECOM["token"]
    made = await client.post("/api/accounts", json={**NEW, "token": "Shop0aToken"}, headers=auth())
    assert made.status == 201 and (await made.json())["token"] == "Shop0aToken"
    renamed = await client.put(f"/api/accounts/{WECOM['id']}", json={"name": "总部企业微信"}, headers=auth())
    assert renamed.status == 200 and (await renamed.json())["token"] == WECOM["token"]
