"""What a person sees: the whole VNeID login clicked through in a real browser."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from tests.conftest import Stack

pytestmark = pytest.mark.browser


async def sign_in_at_vneid(page: Page, full_name: str) -> None:
    await page.get_by_role("button", name=f"Chọn: đăng nhập với {full_name}").click()


async def test_person_signs_in_with_vneid_and_sees_their_account(
    stack: Stack, page: Page, tmp_path: Path
) -> None:
    await page.goto(f"{stack.broker}/")
    await page.get_by_role("link", name="Đăng nhập bằng tài khoản định danh điện tử").click()

    await sign_in_at_vneid(page, "Nguyễn Văn An")
    await page.get_by_label("Mã OTP").fill("123456")
    await page.get_by_role("button", name="Xác nhận").click()
    await page.get_by_role("button", name="Đồng ý").click()

    await expect(page).to_have_url(f"{stack.broker}/account")
    await expect(page.locator("#full-name")).to_have_text("Nguyễn Văn An")
    await expect(page.locator("#bhxh-code")).to_have_text("0112345678")
    await expect(page.get_by_role("status")).to_contain_text("vừa được liên kết")
    await expect(page.locator("#insurance-summary")).to_contain_text("Bảo hiểm xã hội (BHXH)")
    await page.screenshot(path=str(tmp_path / "account.png"), full_page=True)

    await page.get_by_role("button", name="Đăng xuất").click()
    # Through VNeID's RP-initiated logout (GET) and back to the broker's signed-out page, with
    # the `state` the broker sent carried back unchanged.
    await expect(page).to_have_url(
        re.compile(rf"^{re.escape(stack.broker)}/signed-out\?state=[\w-]+$")
    )
    await expect(page.get_by_role("heading", name="Bạn đã đăng xuất")).to_be_visible()


async def test_level_one_citizen_reads_why_in_vietnamese(stack: Stack, page: Page) -> None:
    await page.goto(f"{stack.broker}/")
    await page.get_by_role("link", name="Đăng nhập bằng tài khoản định danh điện tử").click()
    await sign_in_at_vneid(page, "Trần Thị Bình")
    # Level 2 is asked as an essential claim: VNeID refuses her before the consent page.

    await expect(
        page.get_by_role("heading", name="Cần tài khoản định danh điện tử mức độ 2")
    ).to_be_visible()
    await expect(page.locator("#level2-steps")).to_contain_text("ứng dụng VNeID")
    await expect(page.locator("#error-code")).to_have_text("vneid_level_insufficient")
    await page.get_by_role("link", name="Đăng nhập lại bằng tài khoản định danh điện tử").click()
    await expect(
        page.get_by_role("heading", name="Đăng nhập bằng tài khoản định danh điện tử")
    ).to_be_visible()
