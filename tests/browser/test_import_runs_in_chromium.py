"""The accounts import runs in the console, in a real Chromium: an admin finds them from the
menu; the page passes axe-core and fits a phone."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from tests.accounts.account_files import person, write_csv
from tests.admin.test_import_runs import import_file
from tests.browser.test_console_in_chromium import assert_usable, console_sign_in
from tests.conftest import Stack
from tests.support.staff import add_staff
from vssid_broker.admin.models import StaffRole

pytestmark = pytest.mark.browser


async def test_the_console_lists_the_runs_for_an_admin_on_a_phone(
    stack: Stack, page: Page, tmp_path: Path
) -> None:
    run_id = await import_file(
        stack, write_csv(tmp_path / "agency.csv", [person(7), person(8, gender="?")])
    )
    await add_staff(stack, "nhapdulieu", StaffRole.ADMIN)
    await console_sign_in(page, stack, "nhapdulieu")

    await page.get_by_role("link", name="Nhập dữ liệu").click()

    run = page.locator(f"#import-run-{run_id}")
    await expect(run).to_contain_text("Hoàn tất")
    await expect(run).to_contain_text("thêm 1")
    await expect(run).to_contain_text("Giới tính: không hợp lệ (gender.unknown): 1")
    await assert_usable(page, "import-runs")
