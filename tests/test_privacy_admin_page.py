"""The 隐私与数据 admin page (/admin/privacy) and the APIs it uses: erase dry run (the confirm step),
erasure by identity, field errors, agent/supervisor 403, and a browser walk (set a retention, place
and lift a hold, erase a customer after the confirm step, prove the erasure). Screenshots:
/tmp/shots/admin-privacy*.png."""
from __future__ import annotations

import pathlib

from sqlalchemy import func, select

from hub.models import Customer, Message
from tests.conftest import auth
from tests.helpers import post
from tests.rt_helpers import login, make_user
from tests.test_operator_pages import base_url, log_in, new_page
from tests.test_privacy_erasure import customer_of, seed_customer
from tests.wechat_client import text_xml

SHOTS = pathlib.Path("/tmp/shots")


async def count(hub, model) -> int:  # noqa: ANN001
    async with hub.db.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(model.__table__))).scalar())


async def test_erase_dry_run_shows_what_would_go_and_writes_nothing(client, hub, oa, standin):
    cid = await seed_customer(client, hub, oa, standin)
    messages_before, customers_before = await count(hub, Message), await count(hub, Customer)
    resp = await client.post(f"/api/customers/{cid}/erase?dry_run=1", headers=auth())
    assert resp.status == 200, await resp.text()
    plan = await resp.json()
    assert plan["dry_run"] is True and plan["customer_id"] == cid and plan["holds"] == []
    assert plan["counts"]["messages"] == 2 and plan["counts"]["orders"] == 1 and plan["counts"]["conversations"] == 1
    assert plan["counts"]["customers"] == 1 and plan["counts"]["identities"] >= 3
    assert {"kind": "phone", "value": "13812345678", "account_id": ""} in plan["identities"]
    assert (await count(hub, Message), await count(hub, Customer)) == (messages_before, customers_before)
    # the same through POST /api/erasures, by identity
    by_identity = await client.post("/api/erasures", headers=auth(),
                                    json={"identity": "phone:138-1234-5678", "dry_run": True})
    assert by_identity.status == 200, await by_identity.text()
    assert (await by_identity.json())["counts"] == plan["counts"]
    # the preview shows identities in clear: written to the access audit
    audit = await (await client.get("/api/audit", params={"kind": "access", "action": "customer.erase_preview"},
                                    headers=auth())).json()
    assert [e["target"] for e in audit["entries"]] == [f"customer:{cid}"] * 2
    # a hold shows in the preview, and the real erasure is refused
    hold = await (await client.post("/api/holds", json={"kind": "customer", "target_id": cid, "reason": "诉讼"},
                                    headers=auth())).json()
    held = await (await client.post(f"/api/customers/{cid}/erase?dry_run=1", headers=auth())).json()
    assert [h["id"] for h in held["holds"]] == [hold["id"]]
    refused = await client.post("/api/erasures", json={"customer_id": cid, "requester": "本人"}, headers=auth())
    assert refused.status == 409 and (await refused.json())["error"] == "legal_hold"
    assert (await client.delete(f"/api/holds/{hold['id']}", headers=auth())).status == 200
    done = await client.post("/api/erasures", headers=auth(),
                             json={"identity": "openid:oErase1", "account_id": "acme-oa", "requester": "客户来电",
                                   "reason": "删除请求"})
    assert done.status == 200, await done.text()
    record = await done.json()
    assert record["erased_customer"] == cid and record["counts"]["messages"] == 2
    assert await customer_of(hub, "oErase1") is None


async def test_erase_api_errors_name_the_field(client, hub, oa, standin):
    cid = await seed_customer(client, hub, oa, standin)
    cases = [
        ({"requester": "x"}, 400, "missing_customer", "customer_id"),
        ({"customer_id": "abc", "requester": "x"}, 400, "invalid_customer_id", "customer_id"),
        ({"customer_id": cid, "identity": "phone:1", "requester": "x"}, 400, "ambiguous_subject", "identity"),
        ({"identity": "13812345678", "requester": "x"}, 400, "invalid_identity", "identity"),
        ({"identity": "phone:13900000000", "requester": "x"}, 404, "unknown_identity", None),
        ({"customer_id": 999999, "requester": "x"}, 404, "unknown_customer", None),
        ({"customer_id": cid, "requester": "  "}, 400, "missing_requester", "requester"),
        ({"customer_id": cid, "requester": "x", "dry_run": "maybe"}, 400, "invalid_dry_run", "dry_run"),
    ]
    for body, status, code, field in cases:
        resp = await client.post("/api/erasures", json=body, headers=auth())
        data = await resp.json()
        assert (resp.status, data["error"]) == (status, code), (body, data)
        if field:
            assert data["field"] == field, (body, data)
    bad_flag = await client.post(f"/api/customers/{cid}/erase?dry_run=perhaps", headers=auth())
    assert bad_flag.status == 400 and (await bad_flag.json())["field"] == "dry_run"
    assert await customer_of(hub, "oErase1") == cid  # nothing erased by any of them


async def test_agents_and_supervisors_get_403(client, hub):
    for role in ("agent", "supervisor"):
        await make_user(hub, f"pv_{role}", role=role)
        token = await login(client, f"pv_{role}")
        h = {"Authorization": f"Bearer {token}"}
        for method, path, body in [("GET", "/api/privacy/retention", None),
                                   ("PUT", "/api/privacy/retention", {"account_id": "*", "messages_days": 1}),
                                   ("GET", "/api/holds", None), ("POST", "/api/holds", {}),
                                   ("POST", "/api/erasures", {"customer_id": 1, "requester": "x", "dry_run": True}),
                                   ("POST", "/api/customers/1/erase?dry_run=1", {}), ("GET", "/api/erasures", None),
                                   ("GET", "/api/privacy/purges", None), ("POST", "/api/privacy/purges", {"dry_run": True})]:
            resp = await client.request(method, path, json=body, headers=h)
            assert resp.status == 403, (role, method, path, resp.status)
        client.session.cookie_jar.clear()
        await client.post("/api/login", json={"username": f"pv_{role}", "password": f"pv_{role}-password"})
        page = await client.get("/admin/privacy", allow_redirects=False)
        assert page.status == 403
        assert "pv-erase-form" not in await page.text()  # the forbidden page, not the tools
        client.session.cookie_jar.clear()


async def test_admin_page_end_to_end(client, hub, oa, standin, browser):
    from playwright.async_api import expect
    SHOTS.mkdir(parents=True, exist_ok=True)
    cid = await seed_customer(client, hub, oa, standin)
    await post(client, oa, text_xml("gh", "oOther2", "另一位客户", 601))
    await hub.pipeline.drain()
    other = await customer_of(hub, "oOther2")
    await make_user(hub, "dpo", role="admin")
    errors: list[str] = []
    page = await new_page(browser, errors)
    base = base_url(client)
    await log_in(page, base, "dpo", "/admin/privacy")
    await expect(page.locator('.admin-nav a[data-page="privacy"]')).to_have_class("active")
    await expect(page.locator("#pv-audit-link")).to_have_attribute("href", "/admin/audit?kind=access")

    # retention: a bad custom number is refused beside its field, then the default is set to 180 days
    default = page.locator('form.pv-ret-row[data-account="*"]')
    await default.locator('select[data-field="messages_days"]').select_option("custom")
    await default.locator("input.pv-days").first.fill("0")
    await default.locator('button[type="submit"]').click()
    err = default.locator('.field-error[data-for="messages_days"]')
    await expect(err).to_be_visible()
    await expect(err).to_contain_text("36500")
    await page.screenshot(path=str(SHOTS / "admin-privacy-retention-error.png"), full_page=True)
    await default.locator('select[data-field="messages_days"]').select_option("180")
    await default.locator('select[data-field="orders_days"]').select_option("1095")
    await default.locator('button[type="submit"]').click()
    await expect(page.locator("#toasts")).to_contain_text("已保存")
    acct = page.locator('form.pv-ret-row[data-account="acme-oa"]')
    await expect(acct).to_contain_text("生效：180 天")
    await acct.locator('select[data-field="messages_days"]').select_option("forever")
    await acct.locator('button[type="submit"]').click()
    # the messages field's own hint (another field of the row may read 永久保留 before the save lands)
    hint = page.locator('form.pv-ret-row[data-account="acme-oa"] label.field:has(select[data-field="messages_days"]) .field-hint')
    await expect(hint).to_have_text("生效：永久保留")
    ret = await (await client.get("/api/privacy/retention", headers=auth())).json()
    policies = {p["account_id"]: p for p in ret["policies"]}
    assert policies["*"]["messages_days"] == 180 and policies["*"]["orders_days"] == 1095
    assert policies["acme-oa"]["messages_days"] == "forever"

    # legal hold: missing reason is a field error; then placed on the other customer, then lifted
    await page.fill("#pv-hold-target", str(other))
    await page.click("#pv-hold-add")
    await expect(page.locator('#pv-hold-form .field-error[data-for="reason"]')).to_contain_text("保全原因")
    await page.fill("#pv-hold-reason", "诉讼 (2024)浙01民初1号")
    await page.click("#pv-hold-add")
    row = page.locator("#pv-hold-rows tr").first
    await expect(row).to_contain_text(f"#{other}")
    await expect(row).to_contain_text("保全中")
    await page.evaluate("document.getElementById('toasts').replaceChildren()")
    await page.screenshot(path=str(SHOTS / "admin-privacy.png"), full_page=True)
    await row.locator("button", has_text="解除").click()
    await page.click("#confirm-ok")
    await expect(page.locator("#pv-hold-empty")).to_be_visible()

    # erase by identity: the confirm step shows the counts; cancel keeps everything, confirm erases
    await page.check('input[name="pv-erase-by"][value="identity"]')
    await page.fill("#pv-erase-identity", "phone:13812345678")
    await page.click("#pv-erase-preview")
    await expect(page.locator('#pv-erase-form .field-error[data-for="requester"]')).to_be_visible()
    await page.fill("#pv-erase-requester", "客户本人来电，工单 #88")
    await page.fill("#pv-erase-reason", "删除请求")
    await page.click("#pv-erase-preview")
    dialog = page.locator("#pv-erase-dialog")
    await expect(dialog).to_be_visible()
    await expect(dialog.locator('dd[data-count="messages"]')).to_have_text("2")
    await expect(dialog.locator('dd[data-count="orders"]')).to_have_text("1")
    await expect(dialog).to_contain_text("phone:13812345678")
    await page.evaluate("document.getElementById('toasts').replaceChildren()")
    await page.screenshot(path=str(SHOTS / "admin-privacy-confirm.png"))
    await dialog.locator("button", has_text="取消").click()
    assert await customer_of(hub, "oErase1") == cid
    await page.click("#pv-erase-preview")
    await page.click("#pv-erase-confirm")
    await expect(page.locator("#toasts")).to_contain_text(f"已删除客户 #{cid}")
    assert await customer_of(hub, "oErase1") is None
    await expect(page.locator("#pv-rec-rows tr")).to_have_count(1)
    await expect(page.locator("#pv-rec-rows tr").first).to_contain_text("客户本人来电")

    # prove the erasure of an identity; an unknown one is not found
    await page.fill("#pv-prove-identity", "openid:oErase1")
    await page.select_option("#pv-prove-account", "acme-oa")
    await page.click("#pv-prove-go")
    await expect(page.locator("#pv-prove-verdict")).to_contain_text("已找到 1 条删除记录")
    await page.fill("#pv-prove-identity", "openid:oNobody")
    await page.click("#pv-prove-go")
    await expect(page.locator("#pv-prove-verdict")).to_contain_text("没有找到")
    await expect(page.locator("#pv-rec-rows tr")).to_have_count(0)

    # purge: a dry run from the button lists a run
    await page.click("#pv-run-dry")
    await expect(page.locator("#pv-run-rows tr").first).to_contain_text("试运行")
    await page.evaluate("document.getElementById('toasts').replaceChildren()")
    await page.screenshot(path=str(SHOTS / "admin-privacy-records.png"), full_page=True)

    audit = await (await client.get("/api/audit", params={"actor": "dpo"}, headers=auth())).json()
    actions = {e["action"] for e in audit["entries"]}
    assert {"retention.set", "hold.place", "hold.lift", "customer.erase", "customer.erase_preview",
            "retention.purge"} <= actions, actions
    assert not errors, errors
