"""Every page a person and a clerk can reach, crawled in Chromium from their start pages by
following links: none shows a time in UTC, a claim's technical name, a name stored in the
database or the audit trail (`citizen_id_match`, `account.locked`, `staff:thu`, a UUID,
`k=v`), or "#7" for a case. Each page also fits 320 to 1280 px and passes axe at 320 px.

Text inside `<code>` is exempt: that is where a page prints a stable code on purpose, as a
reference to quote (the error code for the support line, an import's rejection code as its
report names it)."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
from playwright.async_api import Page, expect
from sqlalchemy import update

from tests.accounts.account_files import person, write_csv
from tests.admin.test_admin_api import bhxh_account_id, login_in_browser, open_case
from tests.admin.test_import_runs import import_file
from tests.browser.checks import page_problems
from tests.browser.test_console_in_chromium import DUNG, console_sign_in
from tests.browser.test_person_pages import EVERY_OUTCOME, outcome_url, sign_in
from tests.conftest import Stack
from tests.e2e.test_requests import decide, staff_token
from tests.support.staff import add_staff
from vssid_broker.admin import people
from vssid_broker.admin.models import StaffRole
from vssid_broker.audit.events import AuditEventType
from vssid_broker.linking import consent, decisions
from vssid_broker.linking.consent import CLAIMS_IN_WORDS
from vssid_broker.linking.models import LinkConsent

pytestmark = pytest.mark.browser

EM = "092087007788"
BINH_LEVEL1 = "079190123456"
STORED_EVENT_NAMES = "|".join(re.escape(e.value) for e in AuditEventType if "." in e.value)
INTERNAL = {
    "a time in UTC": r"\bUTC\b|\(GMT\)|[+-]00:00\b",
    "an actor as the trail names it": r"\b(?:staff|operator|import|system):",
    "a UUID": r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b",
    "a stored name": r"\b[a-z]+(?:_[a-z0-9]+)+\b",
    "an event type": rf"(?<![\w.])(?:{STORED_EVENT_NAMES})(?![\w.])",
    "a stored key=value": r"\b[a-z_]+=",
    "a number after #": r"#\s?\d",
    "a claim's name": r"\b(?:{})\b".format("|".join(c for c in CLAIMS_IN_WORDS if len(c) > 3)),
}
"""What a person or a clerk must never read, by what it is."""

WHAT_A_PAGE_SAYS = """() => {
    const body = document.body.cloneNode(true);
    body.querySelectorAll('code, script, style, template').forEach(e => e.remove());
    const said = [document.title, body.textContent];
    for (const e of document.querySelectorAll('[placeholder], [aria-label], [title], [alt]'))
        for (const name of ['placeholder', 'aria-label', 'title', 'alt'])
            said.push(e.getAttribute(name) || '');
    return said.join('\\n');
}"""
"""Everything a page says, shown or not yet shown (a closed `<details>`, a hidden view),
the labels a screen reader reads and the hints in empty fields; without `<code>`."""

NOT_PAGES = re.compile(r"^/(auth/|api/|docs|openapi|account/export)|\.(png|svg|csv|json)$")
"""Links that start a sign-in, download a file, or are the developers' API reference."""
PER_KIND = 2
"""Pages of one kind visited: one path, each part with a number in it as N (a case, a
request's reference), and one set of query names."""


def internal_names(url: str, text: str) -> list[str]:
    text = re.sub(r"\b[\w.-]+\.gov\.vn\b", "", text)  # a government site named in a sentence
    found = []
    for what, pattern in INTERNAL.items():
        for match in re.finditer(pattern, text):
            around = text[max(0, match.start() - 40) : match.end() + 40].replace("\n", " ")
            found.append(f"{urlsplit(url).path}: {what} {match.group()!r} in …{around}…")
    return found


def kind_of(url: str) -> str:
    parts = urlsplit(url)
    names = ",".join(sorted({name for name, _ in parse_qsl(parts.query)}))
    path = "/".join("N" if re.search(r"[0-9]", part) else part for part in parts.path.split("/"))
    return f"{path}?{names}"


async def crawl(
    page: Page, origin: str, starts: list[str], within: str
) -> tuple[set[str], list[str]]:
    """Visit `starts` and every page linked from them under `within`, `PER_KIND` of each kind;
    the kinds visited and what was found wrong."""
    queue, seen, visited = [origin + path for path in starts], Counter[str](), set[str]()
    problems: list[str] = []
    while queue:
        url = queue.pop(0)
        await page.goto(url)
        if not page.url.startswith(origin + within):
            continue  # sent elsewhere (signed out, a sign-in): not a page of this crawl
        visited.add(kind_of(page.url))
        problems += internal_names(page.url, await page.evaluate(WHAT_A_PAGE_SAYS))
        problems += await page_problems(page, axe_at=(320,))
        links = await page.eval_on_selector_all(
            "a[href]", "links => links.filter(a => !a.hasAttribute('download')).map(a => a.href)"
        )
        for link in links:
            link = link.split("#")[0]
            path = urlsplit(link).path
            if not link.startswith(origin + within) or NOT_PAGES.search(path):
                continue
            if link in queue or seen[kind_of(link)] >= PER_KIND:
                continue
            seen[kind_of(link)] += 1
            queue.append(link)
    return visited, problems


async def test_no_page_of_a_person_shows_an_internal_name(stack: Stack, page: Page) -> None:
    await sign_in(page, stack, "Nguyễn Văn An")
    # A request of hers, done by a clerk: its page has a history.
    await page.goto(f"{stack.broker}/account/requests/new?kind=health_card_reissue")
    await page.get_by_label("Mất thẻ").check()
    await page.get_by_role("button", name="Gửi yêu cầu").click()
    reference = (await page.locator("#reference").inner_text()).strip()
    await decide(stack, await staff_token(stack), reference, "done")
    # She agreed to an older privacy notice: the account page asks her again.
    async with stack.db.begin() as session:
        await session.execute(update(LinkConsent).values(notice_version="2026-01"))

    starts = ["/", "/account", "/account/requests", "/privacy", "/signed-out", "/demo/app"]
    starts += [urlsplit(outcome_url(stack, r)).path + "?" + urlsplit(outcome_url(stack, r)).query
               for r in EVERY_OUTCOME]  # fmt: skip
    visited, problems = await crawl(page, stack.broker, starts, "/")
    assert problems == []
    assert {"/account?", "/account/health-card?", "/account/requests/N?", "/privacy?"} <= visited


async def test_no_page_of_a_clerk_shows_an_internal_name(
    stack: Stack, page: Page, tmp_path: Path
) -> None:
    # What a day at the counter leaves behind: cases waiting, proposed and decided, a refused
    # login, a locked and unlocked account, a request done, an import with rejected rows.
    dung_case, em_case = await open_case(stack, DUNG), await open_case(stack, EM)
    await login_in_browser(stack, BINH_LEVEL1)
    an_request = await staff_token(stack, "clerk")
    await sign_in(page, stack, "Nguyễn Văn An")
    await page.goto(f"{stack.broker}/account/requests/new?kind=health_card_reissue")
    await page.get_by_label("Thẻ bị hỏng").check()
    await page.get_by_role("button", name="Gửi yêu cầu").click()
    await decide(stack, an_request, (await page.locator("#reference").inner_text()).strip(), "done")
    dung = await bhxh_account_id(stack, "3112345670")
    an = await bhxh_account_id(stack, "0112345678")
    async with stack.db.begin() as session:
        thu = decisions.Decider("thu", None)
        await decisions.approve(
            session, dung_case, version=1, account_id=dung, decider=thu,
            reason="Đã đối chiếu căn cước tại quầy", now=stack.clock(), request_id=None,
            consent_terms=consent.Terms.of_review_case(stack.settings), four_eyes=True,
        )  # fmt: skip
        await decisions.reject(
            session, em_case, version=1, decider=thu, reason="Hai hồ sơ trùng, chờ gộp",
            now=stack.clock(), request_id=None,
        )  # fmt: skip
        for locked in (True, False):
            await people.set_locked(
                session, stack.ctx.refresh_tokens, an, locked=locked, actor="staff:thu",
                reason="người dân báo mất điện thoại", now=stack.clock(), request_id=None,
            )  # fmt: skip
    await import_file(stack, write_csv(tmp_path / "agency.csv", [person(7, gender="?")]))

    await add_staff(stack, "quantri", StaffRole.ADMIN)
    await console_sign_in(page, stack, "quantri")
    await expect(page.locator("#staff-who")).to_contain_text("quantri")
    starts = ["/admin/cases", "/admin/cases?status=all", "/admin/requests", "/admin/audit",
              "/admin/people?q=nguyen van an", "/admin/staff", "/admin/import-runs"]  # fmt: skip
    visited, problems = await crawl(page, stack.broker, starts, "/admin")
    assert problems == []
    assert {
        "/admin/cases/N?",
        "/admin/people/N?",
        "/admin/requests/N?",
        "/admin/audit?account_id",
        "/admin/audit?case_id",
        "/admin/import-runs?",
    } <= visited
