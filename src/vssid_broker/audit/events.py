"""Every kind of event the audit trail records, by the name stored with it, and what each
means in Vietnamese for the auditors and clerks who read the trail in the console.

The stored names are stable: the chain's hashes, the CSV export and the person's own export
carry them, so a new kind of event gets a new name and an old one is never renamed. Below the
error catalogues (`errors`): a refusal names the event it is recorded under.
"""

from __future__ import annotations

from enum import StrEnum


class AuditEventType(StrEnum):
    # --- the person signing in and out ------------------------------------------------------
    LOGIN = "login"
    LOGIN_PASSWORD = "login.password"
    LOGOUT = "logout"
    SESSIONS_ENDED = "sessions.ended"
    TOKEN_REFRESH = "token.refresh"
    TOKEN_REUSE_DETECTED = "token.reuse_detected"
    TOKEN_REVOKED = "token.revoked"
    # --- links, consent and review cases ---------------------------------------------------
    LINK_CREATED = "link.created"
    LINK_REMOVED = "link.removed"
    CONSENT_RECORDED = "consent.recorded"
    REVIEW_CASE_OPENED = "review_case.opened"
    REVIEW_CASE_PROOF = "review_case.proof"
    REVIEW_CASE_ASSIGNED = "review_case.assigned"
    REVIEW_CASE_DECIDED = "review_case.decided"
    # --- staff acting on a person, and reading their data ----------------------------------
    ACCOUNT_LOCKED = "account.locked"
    ACCOUNT_UNLOCKED = "account.unlocked"
    ACCOUNT_SESSIONS_ENDED = "account.sessions_ended"
    CITIZEN_ID_REVEALED = "citizen_id.revealed"
    PERSONAL_DATA_READ = "personal_data.read"
    PERSONAL_DATA_EXPORTED = "personal_data.exported"
    AUDIT_EXPORTED = "audit.exported"
    # --- the person's requests to the agency ------------------------------------------------
    REQUEST_SUBMITTED = "request.submitted"
    REQUEST_PHONE_CODE_WRONG = "request.phone_code_wrong"
    REQUEST_PHONE_CONFIRMED = "request.phone_confirmed"
    REQUEST_CANCELLED = "request.cancelled"
    REQUEST_CLAIMED = "request.claimed"
    REQUEST_DONE = "request.done"
    REQUEST_REFUSED = "request.refused"
    REQUEST_STEP_UP = "request.step_up"
    # --- staff accounts ---------------------------------------------------------------------
    STAFF_SIGN_IN = "staff.sign_in"
    STAFF_SECOND_FACTOR_ENROLLED = "staff.second_factor_enrolled"
    STAFF_SIGN_OUT = "staff.sign_out"
    STAFF_CHANGED = "staff.changed"
    # --- operations -------------------------------------------------------------------------
    ACCOUNTS_IMPORT = "accounts.import"
    DATA_PURGED = "data.purged"


LABELS: dict[AuditEventType, str] = {
    AuditEventType.LOGIN: "Đăng nhập bằng tài khoản định danh điện tử",
    AuditEventType.LOGIN_PASSWORD: "Đăng nhập bằng mật khẩu VssID",
    AuditEventType.LOGOUT: "Đăng xuất",
    AuditEventType.SESSIONS_ENDED: "Kết thúc phiên đăng nhập",
    AuditEventType.TOKEN_REFRESH: "Ứng dụng gia hạn phiên đăng nhập",
    AuditEventType.TOKEN_REUSE_DETECTED: "Mã gia hạn phiên bị dùng lại: thu hồi cả phiên",
    AuditEventType.TOKEN_REVOKED: "Thu hồi phiên đăng nhập của ứng dụng",
    AuditEventType.LINK_CREATED: "Liên kết tài khoản định danh điện tử",
    AuditEventType.LINK_REMOVED: "Huỷ liên kết tài khoản định danh điện tử",
    AuditEventType.CONSENT_RECORDED: "Ghi nhận sự đồng ý của người dân",
    AuditEventType.REVIEW_CASE_OPENED: "Mở hồ sơ kiểm tra liên kết",
    AuditEventType.REVIEW_CASE_PROOF: "Người dân chứng minh bằng mật khẩu VssID",
    AuditEventType.REVIEW_CASE_ASSIGNED: "Giao hồ sơ kiểm tra liên kết",
    AuditEventType.REVIEW_CASE_DECIDED: "Quyết định hồ sơ kiểm tra liên kết",
    AuditEventType.ACCOUNT_LOCKED: "Khoá tài khoản VssID",
    AuditEventType.ACCOUNT_UNLOCKED: "Mở khoá tài khoản VssID",
    AuditEventType.ACCOUNT_SESSIONS_ENDED: "Cán bộ kết thúc mọi phiên đăng nhập",
    AuditEventType.CITIZEN_ID_REVEALED: "Xem số định danh đầy đủ",
    AuditEventType.PERSONAL_DATA_READ: "Cán bộ xem dữ liệu cá nhân",
    AuditEventType.PERSONAL_DATA_EXPORTED: "Người dân tải về dữ liệu của mình",
    AuditEventType.AUDIT_EXPORTED: "Tải nhật ký về (CSV)",
    AuditEventType.REQUEST_SUBMITTED: "Người dân gửi yêu cầu",
    AuditEventType.REQUEST_PHONE_CODE_WRONG: "Nhập sai mã xác nhận số điện thoại",
    AuditEventType.REQUEST_PHONE_CONFIRMED: "Xác nhận số điện thoại mới",
    AuditEventType.REQUEST_CANCELLED: "Người dân huỷ yêu cầu",
    AuditEventType.REQUEST_CLAIMED: "Cán bộ nhận xử lý yêu cầu",
    AuditEventType.REQUEST_DONE: "Yêu cầu đã hoàn thành",
    AuditEventType.REQUEST_REFUSED: "Từ chối yêu cầu",
    AuditEventType.REQUEST_STEP_UP: "Cần xác thực lại bằng VNeID để gửi yêu cầu",
    AuditEventType.STAFF_SIGN_IN: "Cán bộ đăng nhập",
    AuditEventType.STAFF_SECOND_FACTOR_ENROLLED: "Cán bộ đăng ký xác thực hai lớp",
    AuditEventType.STAFF_SIGN_OUT: "Cán bộ đăng xuất",
    AuditEventType.STAFF_CHANGED: "Thay đổi tài khoản cán bộ",
    AuditEventType.ACCOUNTS_IMPORT: "Nhập dữ liệu tài khoản",
    AuditEventType.DATA_PURGED: "Xoá dữ liệu hết thời hạn lưu",
}
"""What each event means, as the console's audit page says it."""


def label(event_type: str) -> str:
    """The event's meaning in words; an entry of a name this version does not know (written by
    a newer one) reads as "sự kiện khác", never as its stored name."""
    try:
        return LABELS[AuditEventType(event_type)]
    except ValueError:
        return "Sự kiện khác"
