"""The demo banner links to the simulated VNeID's issuer URL: it opens a page, on a phone too."""

from __future__ import annotations

from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Page

from tests.conftest import Stack


async def test_the_simulators_issuer_url_opens_its_front_page(stack: Stack, page: Page) -> None:
    await page.set_viewport_size({"width": 320, "height": 640})
    response = await page.goto(f"{stack.sim}/")
    assert response is not None and response.status == 200
    assert await page.locator("h1").inner_text() == "Máy chủ VNeID mô phỏng đang chạy"
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 320
    results = await Axe().run(page)
    serious = [
        violation["id"]
        for violation in results.response["violations"]
        if violation["impact"] in ("serious", "critical")
    ]
    assert serious == []
    await page.get_by_role("link", name="openid-configuration").click()
    assert stack.sim in await page.locator("body").inner_text()  # the discovery JSON's issuer
