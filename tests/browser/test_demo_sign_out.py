"""The demo as the README starts it, on ports of its own choosing ("Ports taken?"): signing out
in Chromium goes through VNeID and ends on the broker's own signed-out page."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from tests.browser.checks import page_problems, sign_in_at_vneid
from tests.support.live_server import free_port
from tests.test_cli import cli_env, running

pytestmark = pytest.mark.browser


async def test_sign_out_ends_on_signed_out_with_the_demo_on_other_ports(
    page: Page, tmp_path: Path
) -> None:
    port, sim_port = free_port(), free_port()
    broker = f"http://127.0.0.1:{port}"
    demo = ("demo", "--port", str(port), "--sim-port", str(sim_port))
    with running(*demo, env=cli_env(tmp_path), cwd=tmp_path, ready_url=f"{broker}/readyz"):
        await page.goto(f"{broker}/")
        await page.get_by_role("link", name="Đăng nhập bằng tài khoản định danh điện tử").click()
        await sign_in_at_vneid(page, "Nguyễn Văn An")
        await expect(page).to_have_url(f"{broker}/account")

        await page.get_by_role("button", name="Đăng xuất").click()
        await expect(page).to_have_url(re.compile(rf"^{re.escape(broker)}/signed-out\?state="))
        await expect(page.get_by_role("heading", name="Bạn đã đăng xuất")).to_be_visible()
        assert await page_problems(page) == []
