"""`/docs` for a new developer, in Chromium: Swagger UI from the broker's own files, themed so
axe-core finds nothing serious, collapsed and with an operation open for a try."""

from __future__ import annotations

import pytest
from playwright.async_api import Page, Request

from tests.browser.checks import page_problems
from tests.conftest import Stack

pytestmark = pytest.mark.browser


async def test_api_docs_pass_axe_offline_at_every_width(stack: Stack, page: Page) -> None:
    fetched: list[str] = []

    def remember(request: Request) -> None:
        fetched.append(request.url)

    page.on("request", remember)
    await page.goto(f"{stack.broker}/docs")
    await page.locator(".opblock").first.wait_for()
    assert await page_problems(page) == []

    await page.set_viewport_size({"width": 1280, "height": 800})
    await page.locator(".opblock-summary-control").first.click()
    await page.get_by_role("button", name="Try it out").first.click()
    await page.get_by_role("textbox", name="Request body").wait_for()
    assert await page_problems(page) == []
    # Offline: every file came from the broker itself.
    assert fetched and all(url.startswith(stack.broker) for url in fetched)
