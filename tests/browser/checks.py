"""What every page must pass in Chromium: no sideways scrolling at phone and desktop widths,
and no serious or critical axe-core violation; and the clicks through the simulated VNeID."""

from __future__ import annotations

from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Page

WIDTHS = (320, 390, 1280)
"""The narrowest phones still sold, a common phone, a desktop."""
AXE_WIDTHS = (320, 1280)
"""Where axe checks a page: once in each layout of the stylesheets, whose breakpoints (30rem
and 40rem) put both phones on the same side of each; at 390 px axe would check again what it
checked at 320 px, and a run costs seconds of CPU on a long page."""

_axe = Axe()


async def page_problems(page: Page, *, axe_at: tuple[int, ...] = AXE_WIDTHS) -> list[str]:
    """At each width: the page's overflow and (at the widths in `axe_at`) its serious and
    critical axe violations, as lines a failing test prints. Empty when the page is fine."""
    problems: list[str] = []
    # Measured once the stylesheet and images are in: a layout read before the stylesheet
    # arrives (a loaded machine) sees the card image at its natural 1012 px.
    await page.wait_for_load_state("load")
    title = await page.title()
    for width in WIDTHS:
        await page.set_viewport_size({"width": width, "height": 800})
        scroll_width = await page.evaluate("document.documentElement.scrollWidth")
        if scroll_width > width:
            problems.append(f"{title} at {width} px: the page is {scroll_width} px wide")
        if width not in axe_at:
            continue
        results = await _axe.run(page)
        for violation in results.response["violations"]:
            if violation["impact"] in ("serious", "critical"):
                targets = [node["target"] for node in violation["nodes"]][:3]
                problems.append(f"{title} at {width} px: {violation['id']} {targets}")
    return problems


async def choose_citizen(page: Page, full_name: str) -> None:
    """The simulator's quick pick; its accessible name starts with the visible word."""
    await page.get_by_role("button", name=f"Chọn: đăng nhập với {full_name}").click()


async def sign_in_at_vneid(page: Page, full_name: str, *, level2: bool = True) -> None:
    """Pick the citizen, then the OTP and consent (level 2). A level-1 citizen goes no further:
    the broker asks level 2 as an essential claim, so VNeID refuses before consent."""
    await choose_citizen(page, full_name)
    if level2:
        await page.get_by_label("Mã OTP").fill("123456")
        await page.get_by_role("button", name="Xác nhận").click()
        await page.get_by_role("button", name="Đồng ý").click()
