"""The Content-Security-Policy holds in a real browser: the whole login and the logout through
VNeID run with nothing blocked (the logout's form is posted by a script file, not inline)."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import ConsoleMessage, Page, expect

from tests.browser.test_login_in_chromium import sign_in_at_vneid
from tests.conftest import Stack

pytestmark = pytest.mark.browser


async def test_login_and_logout_run_under_the_policy_with_nothing_blocked(
    stack: Stack, page: Page
) -> None:
    blocked: list[str] = []

    def watch(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            blocked.append(message.text)

    page.on("console", watch)
    await page.goto(f"{stack.broker}/")
    await page.get_by_role("link", name="Đăng nhập bằng tài khoản định danh điện tử").click()
    await sign_in_at_vneid(page, "Nguyễn Văn An")
    await page.get_by_label("Mã OTP").fill("123456")
    await page.get_by_role("button", name="Xác nhận").click()
    await page.get_by_role("button", name="Đồng ý").click()
    await expect(page.locator("#full-name")).to_have_text("Nguyễn Văn An")

    await page.get_by_role("button", name="Đăng xuất").click()
    # Through VNeID's logout (GET) and back to the signed-out page.
    await expect(page).to_have_url(re.compile(rf"^{re.escape(stack.broker)}/signed-out\?state="))
    assert blocked == []


async def test_an_inline_script_would_be_blocked(stack: Stack, page: Page) -> None:
    """The policy is really enforced: a script written into the page does not run."""
    await page.goto(f"{stack.broker}/")
    ran = await page.evaluate(
        """() => new Promise((done) => {
            window.ranInline = false;
            const script = document.createElement("script");
            script.textContent = "window.ranInline = true;";
            document.body.appendChild(script);
            setTimeout(() => done(window.ranInline), 100);
        })"""
    )
    assert ran is False
