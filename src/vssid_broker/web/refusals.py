"""The pages a person lands on when a VNeID login in the browser does not end signed in.

Each outcome has its own page and `<title>`, saying what happened and what to do next; the
stable code and the request id are printed small, for the support line. The callback does not
render the page itself: it redirects (303) to `/auth/vneid/outcome?ref=…`, where `ref` is the
outcome sealed with the broker's key (JWE, A256GCM), so the page survives reload and Back
(the callback's state is single use: reloading the callback itself could only say "expired"),
cannot be forged into another message, and shows the person no raw code in the address bar.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from vssid_broker.errors.login import (
    AccountNotActive,
    AssuranceTooLow,
    LinkRefused,
    LinkUnderReview,
    LoginRefused,
    ProviderDenied,
    ProviderError,
    ProviderMisconfigured,
    ProviderRefusedRequest,
    ProviderUnavailable,
    ReviewRejected,
    VssidAccountRequired,
)
from vssid_broker.sealing import SealedPlace
from vssid_broker.sessions.keys import SigningKeys

OUTCOME_PATH = "/auth/vneid/outcome"
OUTCOME_REFERENCE_TTL_SECONDS = 24 * 3600
OUTCOME_REFERENCE = SealedPlace("url", f"{OUTCOME_PATH}?ref")
"""The sealed outcome travels in the outcome page's URL; bound there, nothing else sealed under
the key (a stored secret, say) passes for one."""
"""Long enough to come back to the page the next day; after that the page says so."""

SUPPORT_PHONE = "1900 9068"
SUPPORT_PHONE_URI = "tel:19009068"


@dataclass(frozen=True)
class RefusalPage:
    template: str
    title: str
    """The tab's title: each outcome its own, so a person (and a screen reader) can tell them
    apart in the history list."""


UNDER_REVIEW = RefusalPage("refusals/under_review.html", "Yêu cầu liên kết đang được kiểm tra")
LEVEL2_REQUIRED = RefusalPage(
    "refusals/level2_required.html", "Cần tài khoản định danh điện tử mức độ 2"
)
REGISTER_FIRST = RefusalPage("refusals/register_first.html", "Cần đăng ký tài khoản VssID trước")
LINK_NEEDS_HELP = RefusalPage("refusals/call_us.html", "Chưa thể liên kết tự động")
ACCOUNT_LOCKED = RefusalPage("refusals/account_locked.html", "Tài khoản VssID đang tạm khoá")
NOT_COMPLETED_AT_VNEID = RefusalPage(
    "refusals/vneid_not_completed.html", "Đăng nhập tại VNeID chưa hoàn tất"
)
VNEID_UNAVAILABLE = RefusalPage("refusals/try_later.html", "VNeID tạm thời chưa phản hồi")
VNEID_MISCONFIGURED = RefusalPage("refusals/misconfigured.html", "Kết nối với VNeID đang gặp sự cố")
"""Not "try again in a minute": a wrong setting does not heal by itself (operators are told)."""
REVIEW_REJECTED = RefusalPage("refusals/review_rejected.html", "Cán bộ BHXH đã kiểm tra yêu cầu")
START_AGAIN = RefusalPage("refusals/start_again.html", "Vui lòng đăng nhập lại")
"""Every protocol refusal (state, browser binding, ID token, issuer…): for the person they all
mean "start again"; the code tells support which rule fired."""

PAGES: dict[str, RefusalPage] = {
    LinkUnderReview.code: UNDER_REVIEW,
    AssuranceTooLow.code: LEVEL2_REQUIRED,
    VssidAccountRequired.code: REGISTER_FIRST,
    LinkRefused.code: LINK_NEEDS_HELP,
    AccountNotActive.code: ACCOUNT_LOCKED,
    ProviderDenied.code: NOT_COMPLETED_AT_VNEID,
    ProviderError.code: VNEID_UNAVAILABLE,
    ProviderUnavailable.code: VNEID_UNAVAILABLE,
    ProviderMisconfigured.code: VNEID_MISCONFIGURED,
    ReviewRejected.code: REVIEW_REJECTED,
    ProviderRefusedRequest.code: VNEID_UNAVAILABLE,
}


def page_for(code: str) -> RefusalPage:
    return PAGES.get(code, START_AGAIN)


@dataclass(frozen=True)
class Outcome:
    """What the outcome page needs: no personal data, only the code and the request id."""

    code: str
    request_id: str
    status: int


def seal_outcome(keys: SigningKeys, refusal: LoginRefused, request_id: str, now: datetime) -> str:
    payload = {
        "code": refusal.code,
        "rid": request_id,
        "status": refusal.status,
        "at": int(now.timestamp()),
    }
    return keys.seal(json.dumps(payload, separators=(",", ":")), OUTCOME_REFERENCE.of())


def open_outcome(keys: SigningKeys, reference: str | None, now: datetime) -> Outcome | None:
    """The sealed outcome, or None when it is absent, altered, not ours or too old."""
    if not reference or len(reference) > 2048:
        return None
    try:
        payload = json.loads(keys.unseal(reference, OUTCOME_REFERENCE.of()))
        outcome = Outcome(str(payload["code"]), str(payload["rid"]), int(payload["status"]))
        sealed_at = int(payload["at"])
    except Exception:  # any tampering or foreign key looks alike: not an outcome of ours
        return None
    if not 0 <= now.timestamp() - sealed_at <= OUTCOME_REFERENCE_TTL_SECONDS:
        return None
    return outcome
