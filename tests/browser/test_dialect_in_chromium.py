"""The app-flow demo page (`/demo/app`) against a VNeID speaking the dialect, in Chromium: the
page must hand the broker the code exactly as sent ("+" unescaped) and the key of an encrypted
code beside it, as the VssID app must."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from tests.browser.checks import sign_in_at_vneid
from tests.conftest import Stack
from tests.e2e.test_vneid_dialect import dialect_pair
from tests.support.http import AsyncClient


@pytest.mark.parametrize("fault", ["dialect_plus_in_code", "dialect_encrypted_code"])
async def test_the_app_demo_signs_in_with_codes_as_the_dialect_sends_them(
    stack: Stack, page: Page, tmp_path: Path, fault: str
) -> None:
    with dialect_pair(stack.settings, tmp_path, "aes-cbc", True) as (broker, sim):
        async with AsyncClient() as client:
            scripted = await client.post(
                f"{sim}/_test/faults", json={"fault": fault, "times": 1, "delay_seconds": 0}
            )
            scripted.raise_for_status()
        await page.goto(f"{broker}/demo/app")
        await page.get_by_role("button", name="Đăng nhập bằng tài khoản định danh điện tử").click()
        await sign_in_at_vneid(page, "Nguyễn Văn An")
        await expect(page).to_have_url(f"{broker}/demo/app")
        await expect(page.locator("#app-name")).to_have_text("Nguyễn Văn An")
