"""The console's words for what the database and the audit trail store: every status, reason,
role and change a clerk can meet has them, and an audit event's outcome is said in words or
not at all (the CSV export keeps the stored names)."""

from __future__ import annotations

from typing import get_args

from vssid_broker.accounts.models import AccountStatus
from vssid_broker.admin.models import StaffRole
from vssid_broker.admin.service import StaffChange
from vssid_broker.audit.events import AuditEventType
from vssid_broker.errors.login import AssuranceTooLow, WrongPassword
from vssid_broker.errors.staff import InvalidStaffCredentials
from vssid_broker.linking.models import ReviewReason, ReviewStatus
from vssid_broker.requests.labels import STATUS_LABELS as REQUEST_STATUS_LABELS
from vssid_broker.requests.models import RequestStatus
from vssid_broker.web.staff.console import audit_words, base


def test_every_stored_value_a_clerk_meets_has_words() -> None:
    assert set(base.STATUS_LABELS) == set(ReviewStatus)
    assert set(base.REASON_LABELS) == set(ReviewReason)
    assert set(base.ROLE_LABELS) == set(StaffRole)
    assert set(base.ACCOUNT_STATUS_LABELS) == set(AccountStatus)
    assert set(base.STAFF_CHANGE_LABELS) == set(get_args(StaffChange))
    assert set(REQUEST_STATUS_LABELS) == set(RequestStatus)


def test_an_outcome_is_said_in_the_words_of_its_event() -> None:
    say = audit_words.outcome_words
    assert (
        say(AuditEventType.REVIEW_CASE_OPENED, "name_birthdate_match")
        == (base.REASON_LABELS[ReviewReason.NAME_BIRTHDATE_MATCH])
    )
    assert say(AuditEventType.ACCOUNT_LOCKED, "locked") == "Đã khoá"
    assert say(AuditEventType.REQUEST_DONE, "done") == "Đã hoàn thành"
    assert say(AuditEventType.LINK_CREATED, "auto_linked") == "tự động, theo số định danh cá nhân"


def test_a_refusal_is_said_by_its_own_message_for_the_event_it_ended() -> None:
    say = audit_words.outcome_words
    assert say(AuditEventType.LOGIN, "vneid_level_insufficient") == (
        f"từ chối: {AssuranceTooLow.message}"
    )
    # One code, two audiences: the staff's sign-in and the person's are each said their way.
    assert say(AuditEventType.STAFF_SIGN_IN, "invalid_credentials") == (
        f"từ chối: {InvalidStaffCredentials.message}"
    )
    assert say(AuditEventType.LOGIN_PASSWORD, "invalid_credentials") == (
        f"từ chối: {WrongPassword.message}"
    )


def test_an_outcome_without_words_is_left_out_not_shown_as_stored() -> None:
    assert audit_words.outcome_words(AuditEventType.DATA_PURGED, "purged") is None
    assert audit_words.outcome_words("a.later_kind", "something_new") is None
