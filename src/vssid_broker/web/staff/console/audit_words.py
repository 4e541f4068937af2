"""The audit trail as the console's audit page says it: what happened (`audit.events`), how it
ended, who did it, and the case, request or account it concerns, each in Vietnamese words.

The stored names (event types, outcomes, detail keys) stay in the CSV export, for auditors'
tools; a page never shows them. An outcome with no words here is left out rather than shown
as its stored name (the CSV still carries it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache

from vssid_broker.audit import events
from vssid_broker.audit.events import AuditEventType
from vssid_broker.audit.models import AuditEvent
from vssid_broker.errors import DomainError
from vssid_broker.errors import login as _login  # noqa: F401 - the catalogues walked below
from vssid_broker.errors import requests as _requests  # noqa: F401
from vssid_broker.errors import staff as _staff  # noqa: F401
from vssid_broker.errors import tokens as _tokens  # noqa: F401
from vssid_broker.requests.labels import STATUS_LABELS as REQUEST_STATUS_LABELS
from vssid_broker.web.rendering import LINK_METHOD_WORDS, actor_words
from vssid_broker.web.staff.console.base import (
    ACCOUNT_STATUS_LABELS,
    REASON_LABELS,
    STAFF_CHANGE_LABELS,
)

_SESSIONS_ENDED = {
    "ended_by_person": "người dân đăng xuất một thiết bị",
    "all_ended_by_person": "người dân đăng xuất mọi thiết bị",
    "vneid_backchannel_logout": "VNeID báo người dân đã đăng xuất",
    "vneid_frontchannel_logout": "VNeID báo người dân đã đăng xuất",
}
_WHAT_WAS_READ = {
    "case_evidence": "hồ sơ kiểm tra liên kết",
    "account": "trang thông tin người dân",
    "account_links": "các liên kết của tài khoản",
    "account_search": "kết quả tra cứu",
}
_REQUEST_MOVES = (
    AuditEventType.REQUEST_SUBMITTED,
    AuditEventType.REQUEST_PHONE_CODE_WRONG,
    AuditEventType.REQUEST_PHONE_CONFIRMED,
    AuditEventType.REQUEST_CANCELLED,
    AuditEventType.REQUEST_CLAIMED,
    AuditEventType.REQUEST_DONE,
    AuditEventType.REQUEST_REFUSED,
)
"""Events of a request's life, each ending in the request's new status."""

OUTCOME_WORDS: Mapping[AuditEventType, Mapping[str, str]] = {
    **dict.fromkeys(_REQUEST_MOVES, REQUEST_STATUS_LABELS),
    AuditEventType.LOGIN: {"succeeded": "thành công"},
    AuditEventType.LOGIN_PASSWORD: {"succeeded": "thành công"},
    AuditEventType.LOGOUT: {"succeeded": "thành công"},
    AuditEventType.SESSIONS_ENDED: _SESSIONS_ENDED,
    AuditEventType.TOKEN_REUSE_DETECTED: {"family_revoked": "đã thu hồi cả phiên của ứng dụng"},
    AuditEventType.TOKEN_REVOKED: {"revoked": "đã thu hồi"},
    AuditEventType.LINK_CREATED: {
        "auto_linked": LINK_METHOD_WORDS["citizen_id_match"],
        "staff_review": LINK_METHOD_WORDS["staff_review"],
        "password_proof": LINK_METHOD_WORDS["password_proof"],
    },
    AuditEventType.LINK_REMOVED: {"unlinked": "đã huỷ liên kết"},
    AuditEventType.CONSENT_RECORDED: {
        "given": "khi liên kết",
        "renewed": "với thông báo về quyền riêng tư mới",
    },
    AuditEventType.REVIEW_CASE_OPENED: {
        str(reason): words for reason, words in REASON_LABELS.items()
    },
    AuditEventType.REVIEW_CASE_PROOF: {"filed": "đã chuyển cán bộ kiểm tra"},
    AuditEventType.REVIEW_CASE_ASSIGNED: {
        "claimed": "cán bộ nhận xử lý",
        "assigned": "giao cho cán bộ khác",
        "released": "trả về hàng chờ",
    },
    AuditEventType.REVIEW_CASE_DECIDED: {
        "proposed": "đề xuất liên kết",
        "approved": "phê duyệt liên kết",
        "returned": "trả lại cán bộ kiểm tra",
        "rejected": "từ chối liên kết",
        "closed": "đóng hồ sơ",
    },
    AuditEventType.ACCOUNT_LOCKED: ACCOUNT_STATUS_LABELS,
    AuditEventType.ACCOUNT_UNLOCKED: ACCOUNT_STATUS_LABELS,
    AuditEventType.CITIZEN_ID_REVEALED: {
        "case": "trong hồ sơ kiểm tra liên kết",
        "account": "trên trang thông tin người dân",
    },
    AuditEventType.PERSONAL_DATA_READ: _WHAT_WAS_READ,
    AuditEventType.STAFF_SIGN_IN: {"succeeded": "thành công"},
    AuditEventType.STAFF_SECOND_FACTOR_ENROLLED: {"totp": "bằng ứng dụng xác thực"},
    AuditEventType.STAFF_SIGN_OUT: {"succeeded": "thành công"},
    AuditEventType.STAFF_CHANGED: {"created": "thêm cán bộ", **dict(STAFF_CHANGE_LABELS.items())},
    AuditEventType.ACCOUNTS_IMPORT: {"completed": "hoàn tất", "failed": "dừng vì lỗi tệp"},
}
"""How each kind of event ended, by its stored outcome. Refusals are said by their error's
own message (the error catalogues), not here."""


@cache
def _refusal_messages() -> dict[tuple[str | None, str], str]:
    """Each error code's message, by the event it is recorded under and by the code alone
    (`invalid_credentials` is a staff's and a person's refusal, each said its own way)."""
    found: dict[tuple[str | None, str], str] = {}
    pending: list[type[DomainError]] = [DomainError]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        found.setdefault((cls.audit_event, cls.code), cls.message)
        found.setdefault((None, cls.code), cls.message)
    return found


def outcome_words(event_type: str, outcome: str) -> str | None:
    try:
        known = OUTCOME_WORDS.get(AuditEventType(event_type), {})
    except ValueError:  # written by a newer version
        known = {}
    if outcome in known:
        return known[outcome]
    messages = _refusal_messages()
    refusal = messages.get((event_type, outcome)) or messages.get((None, outcome))
    return f"từ chối: {refusal}" if refusal else None


@dataclass(frozen=True)
class EventInWords:
    """One line of the audit page."""

    what: str
    outcome: str | None
    who: str
    reason: str | None
    """The reason a staff member typed (what the system writes there is for the CSV)."""
    case_id: int | None
    request_reference: str | None


def in_words(event: AuditEvent) -> EventInWords:
    details = event.details or {}
    case_id = details.get("case_id")
    reference = details.get("reference")
    reason = details.get("reason")
    by_staff = event.actor.startswith("staff:")
    return EventInWords(
        what=events.label(event.event_type),
        outcome=outcome_words(event.event_type, event.outcome),
        who=actor_words(event.actor),
        reason=reason if by_staff and isinstance(reason, str) else None,
        case_id=case_id if isinstance(case_id, int) else None,
        request_reference=reference if isinstance(reference, str) else None,
    )
