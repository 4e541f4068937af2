"""The person's privacy pages in a real Chromium: the notice from the login page, the account
page's linked-identity section, the download of their data, unlinking, and the question asked
again when the notice changed since they agreed; each page on a 320 px phone screen and clean
under axe-core (no serious or critical violation)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Page, ViewportSize, expect
from sqlalchemy import select, update

from tests.conftest import Stack
from vssid_broker.audit.events import AuditEventType
from vssid_broker.audit.models import AuditEvent
from vssid_broker.linking.models import FederatedLink, LinkConsent

pytestmark = pytest.mark.browser
PHONE = ViewportSize(width=320, height=640)


async def assert_fits_a_phone_and_passes_axe(page: Page, part: str = "html") -> None:
    wide = await page.evaluate(
        """part => [...document.querySelectorAll(part + ', ' + part + ' *')]
            .filter(e => e.getBoundingClientRect().right > window.innerWidth + 0.5)
            .map(e => e.tagName + '#' + e.id + '.' + e.className)""",
        part,
    )
    assert wide == [], f"wider than a {PHONE['width']} px screen: {wide}"
    results = await Axe().run(page)
    grave = [
        (v["id"], v["impact"])
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert grave == []


async def sign_in_as_an(page: Page, stack: Stack) -> None:
    await page.goto(f"{stack.broker}/")
    await page.get_by_role("link", name="Đăng nhập bằng tài khoản định danh điện tử").click()
    await page.get_by_role("button", name="Đăng nhập với Nguyễn Văn An").click()
    await page.get_by_label("Mã OTP").fill("123456")
    await page.get_by_role("button", name="Xác nhận").click()
    await page.get_by_role("button", name="Đồng ý").click()
    await expect(page).to_have_url(f"{stack.broker}/account")


async def test_the_privacy_notice_is_linked_from_the_login_page(stack: Stack, page: Page) -> None:
    await page.set_viewport_size(PHONE)
    await page.goto(f"{stack.broker}/")
    await page.get_by_role("link", name="Thông báo về quyền riêng tư").click()
    await expect(page).to_have_url(f"{stack.broker}/privacy")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Thông báo về quyền riêng tư")
    await expect(page.locator("main")).to_contain_text("không lưu ảnh chân dung, vân tay")
    await expect(page.locator("main")).to_contain_text(stack.settings.privacy_notice_version)
    await assert_fits_a_phone_and_passes_axe(page)


async def test_the_person_sees_the_link_downloads_their_data_and_unlinks(
    stack: Stack, page: Page, tmp_path: Path
) -> None:
    await page.set_viewport_size(PHONE)
    await sign_in_as_an(page, stack)
    section = page.locator("#privacy")
    await expect(section).to_contain_text("Tài khoản định danh điện tử VNeID")
    await expect(section).to_contain_text("tự động, theo số định danh cá nhân")
    await expect(section).to_contain_text(f"phiên bản {stack.settings.privacy_notice_version}")
    await expect(page.locator("#linked-since")).to_contain_text(stack.clock().strftime("%d/%m/%Y"))
    # The rest of the account page is another's to fit (phone widths); this section fits.
    await assert_fits_a_phone_and_passes_axe(page, "#privacy")

    async with page.expect_download() as waiting:
        await page.get_by_role("link", name="Tải về dữ liệu của tôi (JSON)").click()
    download = await waiting.value
    saved = tmp_path / download.suggested_filename
    await download.save_as(saved)
    held = json.loads(saved.read_text())
    assert held["account"]["citizen_id"] == "001085012345"
    assert held["account"]["full_name"] == "Nguyễn Văn An"
    assert [link["method"] for link in held["links"]] == ["citizen_id_match"]
    assert held["consents"][0]["withdrawn_at"] is None
    assert {"link.created", "consent.recorded", "login"} <= {
        e["event_type"] for e in held["audit_events"]
    }

    await page.get_by_text("Hủy liên kết tài khoản định danh điện tử").click()
    await page.get_by_role("button", name="Hủy liên kết").click()
    await expect(page).to_have_url(f"{stack.broker}/account/unlinked")
    await expect(page.get_by_role("status")).to_contain_text("Mọi phiên đăng nhập đã kết thúc")
    await assert_fits_a_phone_and_passes_axe(page)
    await page.goto(f"{stack.broker}/account")  # the session ended with the link
    await expect(page).to_have_url(f"{stack.broker}/")

    async with stack.db() as session:
        assert await session.scalar(select(FederatedLink)) is None
        consent = await session.scalar(select(LinkConsent))
        removed = await session.scalar(
            select(AuditEvent).where(AuditEvent.event_type == "link.removed")
        )
        exported = await session.scalar(
            select(AuditEvent).where(AuditEvent.event_type == "personal_data.exported")
        )
    assert consent is not None and consent.withdrawn_at is not None
    assert removed is not None and removed.actor == "person"
    assert removed.details["browser_sessions_ended"] == 1
    assert exported is not None and exported.actor == "person"


async def test_a_person_who_agreed_to_an_older_notice_is_asked_again(
    stack: Stack, page: Page
) -> None:
    current = stack.settings.privacy_notice_version
    await page.set_viewport_size(PHONE)
    await sign_in_as_an(page, stack)
    asked = page.locator("#notice-update")
    await expect(asked).to_have_count(0)  # she agreed just now, to today's notice
    async with stack.db.begin() as session:  # as if she had linked under the notice before
        await session.execute(update(LinkConsent).values(notice_version="2026-01"))

    await page.reload()
    await expect(asked).to_contain_text("theo phiên bản 2026-01")
    await expect(asked).to_contain_text(f"Phiên bản hiện hành là {current}")
    await assert_fits_a_phone_and_passes_axe(page, "#notice-update")
    await asked.get_by_role("link", name="xem những gì thay đổi").click()
    await expect(page.locator("#changes + ul")).to_contain_text("giới tính")
    await page.go_back()

    # A form from elsewhere, without this session's token, changes nothing.
    refused = await page.request.post(f"{stack.broker}/account/consent", form={})
    assert refused.status == 403
    assert await stack.count(LinkConsent) == 1

    await page.get_by_role("button", name="Tôi đồng ý với phiên bản mới").click()
    await expect(page).to_have_url(f"{stack.broker}/account#privacy")
    await expect(asked).to_have_count(0)
    consents = page.locator(".consents li")
    await expect(consents).to_have_count(2)  # the older consent stays, as what she agreed to
    await expect(consents.first).to_contain_text(f"phiên bản {current}")
    await page.reload()
    await expect(asked).to_have_count(0)
    async with stack.db() as session:
        rows = list(await session.scalars(select(LinkConsent).order_by(LinkConsent.id)))
        renewed = await session.scalar(
            select(AuditEvent).where(AuditEvent.event_type == AuditEventType.CONSENT_RECORDED)
            .order_by(AuditEvent.id.desc())
        )  # fmt: skip
    assert [row.notice_version for row in rows] == ["2026-01", current]
    assert rows[0].claims == rows[1].claims and rows[1].withdrawn_at is None
    assert renewed is not None and (renewed.outcome, renewed.actor) == ("renewed", "person")

    # Unlinking withdraws both.
    await page.get_by_text("Hủy liên kết tài khoản định danh điện tử").click()
    await page.get_by_role("button", name="Hủy liên kết").click()
    await expect(page).to_have_url(f"{stack.broker}/account/unlinked")
    async with stack.db() as session:
        withdrawn = list(await session.scalars(select(LinkConsent.withdrawn_at)))
    assert len(withdrawn) == 2 and None not in withdrawn
