"""Drive the simulated VNeID login pages with plain HTTP, as a person in a browser would.

    location = await sign_in_at_vneid(client, authorization_url, "001085012345")

`authorization_url` is the full VNeID authorization URL the relying party produced
(``{issuer}/authorize?...``, or ``?client_id=...&request_uri=...`` after PAR). The driver
fills in the login form, the OTP step (level-2 citizens) and the consent page, and returns
the ``Location`` of the final redirect back to the relying party, without following it:
``redirect_uri?code=...&state=...&iss=...`` on success, or ``...?error=...`` when the
request is refused, consent is declined, or the citizen's VNeID account is locked (the
driver then presses "Quay lại ứng dụng", which sends ``error=access_denied``).

A page that cannot move forward (wrong passcode, wrong OTP, unknown citizen, an invalid
request shown as an error page) raises `SimSignInError` with the step and the page's message.

It is public so the tests, the benchmark and anyone trying the simulator by hand sign people
in the same way. It depends only on httpx and the standard library (not on the rest of the
simulator): it sees the pages as any browser would, so the simulator stays a black box.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import httpx

# Enough for login, OTP, consent (and one "return" press), each posted and then shown by
# GET; more means the pages loop.
MAX_STEPS = 12


class SimSignInError(RuntimeError):
    def __init__(self, step: str, message: str, status_code: int) -> None:
        super().__init__(f"VNeID sign-in stopped at step {step!r} (HTTP {status_code}): {message}")
        self.step = step
        self.message = message
        self.status_code = status_code


@dataclass
class _Form:
    action: str
    fields: dict[str, str] = field(default_factory=dict)


class _PageReader(HTMLParser):
    """Reads the step name (``<main data-step>``), the forms by id and the error message."""

    def __init__(self) -> None:
        super().__init__()
        self.step = ""
        self.forms: dict[str, _Form] = {}
        self.error = ""
        self._form: _Form | None = None
        self._in_error = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        if tag == "main":
            self.step = attributes.get("data-step", "")
        elif tag == "form":
            self._form = _Form(attributes.get("action", ""))
            if attributes.get("id"):
                self.forms[attributes["id"]] = self._form
        elif (
            tag == "input"
            and self._form is not None
            and attributes.get("name")
            and attributes.get("type") == "hidden"
        ):
            self._form.fields[attributes["name"]] = attributes.get("value", "")
        if attributes.get("id") == "error":
            self._in_error = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None
        if tag in ("div", "p"):
            self._in_error = False

    def handle_data(self, data: str) -> None:
        if self._in_error:
            self.error += data.strip()


@dataclass
class _Choices:
    citizen_id: str
    passcode: str
    otp: str
    consent: bool
    done: set[str] = field(default_factory=set)


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc


def _next_step(
    response: httpx.Response, choices: _Choices
) -> str | tuple[str, dict[str, str] | None]:
    """Either the final Location (str), the next page to get (url, None: the simulator
    answers each form with a redirect to its next page) or the next form to post (url, data)."""
    if response.is_redirect:
        location = urljoin(str(response.url), response.headers["location"])
        if _origin(location) == _origin(str(response.url)):
            return location, None
        return location
    page = _PageReader()
    page.feed(response.text)
    step = page.step or "unknown"
    switch = page.forms.get("switch-form")
    if step == "consent" and switch and switch.fields.get("signed_in_as") != choices.citizen_id:
        # Signed in at VNeID already, as someone else: "Đăng nhập tài khoản khác".
        credentials = {"so_dinh_danh": choices.citizen_id, "mat_khau": choices.passcode}
        return urljoin(str(response.url), switch.action), {**switch.fields, **credentials}
    if step in choices.done or step not in ("login", "otp", "consent", "locked"):
        # Back on a page already submitted (wrong passcode / OTP) or an error page.
        raise SimSignInError(step, page.error or response.text[:300], response.status_code)
    choices.done.add(step)
    form_id, extra = {
        "login": ("login-form", {"so_dinh_danh": choices.citizen_id, "mat_khau": choices.passcode}),
        "otp": ("otp-form", {"otp": choices.otp}),
        "consent": ("consent-form", {"quyet_dinh": "dong_y" if choices.consent else "huy"}),
        "locked": ("return-form", {}),
    }[step]
    form = page.forms.get(form_id)
    if form is None:
        raise SimSignInError(step, f"form {form_id!r} not found", response.status_code)
    return urljoin(str(response.url), form.action), {**form.fields, **extra}


# (method, url, form data or None)
_Request = tuple[str, str, dict[str, str] | None]
_Conversation = Generator[_Request, httpx.Response, str]


def _conversation(authorization_url: str, choices: _Choices) -> _Conversation:
    """The sign-in as a sequence of requests, apart from how they are sent: yields each
    request, is sent its response, and returns the final Location. The two public functions
    below only carry the requests, with an async or a sync client."""
    response = yield ("GET", authorization_url, None)
    for _ in range(MAX_STEPS):
        step = _next_step(response, choices)
        if isinstance(step, str):
            return step
        url, data = step
        response = yield ("GET" if data is None else "POST", url, data)
    raise SimSignInError("loop", "too many pages without a redirect", response.status_code)


def _advance(conversation: _Conversation, response: httpx.Response) -> _Request | str:
    """Hand the conversation a response: the next request, or the final Location."""
    try:
        return conversation.send(response)
    except StopIteration as finished:
        return str(finished.value)


async def sign_in_at_vneid(
    client: httpx.AsyncClient,
    authorization_url: str,
    citizen_id: str,
    passcode: str = "Vneid@123",
    otp: str = "123456",
    consent: bool = True,
) -> str:
    """Sign in at the simulated VNeID and return the redirect Location back to the client."""
    conversation = _conversation(authorization_url, _Choices(citizen_id, passcode, otp, consent))
    step: _Request | str = next(conversation)
    while not isinstance(step, str):
        method, url, data = step
        response = await client.request(method, url, data=data, follow_redirects=False)
        step = _advance(conversation, response)
    return step


def sign_in_at_vneid_sync(
    client: httpx.Client,
    authorization_url: str,
    citizen_id: str,
    passcode: str = "Vneid@123",
    otp: str = "123456",
    consent: bool = True,
) -> str:
    """The same as `sign_in_at_vneid`, with a synchronous httpx client."""
    conversation = _conversation(authorization_url, _Choices(citizen_id, passcode, otp, consent))
    step: _Request | str = next(conversation)
    while not isinstance(step, str):
        method, url, data = step
        response = client.request(method, url, data=data, follow_redirects=False)
        step = _advance(conversation, response)
    return step
