"""What staff are told by the admin API: sign-in, roles, review cases and links."""

from __future__ import annotations

from vssid_broker.audit.events import AuditEventType
from vssid_broker.errors import Conflict, DomainError, Forbidden, NotFound, Unauthorized
from vssid_broker.passwords import STAFF_MIN_PASSWORD_LENGTH


class InvalidStaffCredentials(Unauthorized):
    code = "invalid_credentials"
    message = "Tên đăng nhập hoặc mật khẩu không đúng."
    audit_event = AuditEventType.STAFF_SIGN_IN


class StaffSignInLocked(DomainError):
    status = 429
    code = "staff_sign_in_locked"
    message = (
        "Tài khoản cán bộ tạm thời bị khoá do nhập sai mật khẩu nhiều lần. Vui lòng thử lại sau."
    )
    audit_event = AuditEventType.STAFF_SIGN_IN


class InvalidStaffToken(Unauthorized):
    code = "invalid_staff_token"
    message = "Phiên làm việc của cán bộ không hợp lệ hoặc đã hết hạn. Vui lòng đăng nhập lại."


class StaffRoleRequired(Forbidden):
    code = "staff_role_required"
    message = "Tài khoản cán bộ của bạn không có quyền thực hiện thao tác này."


class StaffUserExists(Conflict):
    code = "staff_user_exists"
    message = "Tên đăng nhập cán bộ đã tồn tại."


class WeakStaffPassword(DomainError):
    status = 422
    code = "weak_password"
    message = f"Mật khẩu cán bộ phải có ít nhất {STAFF_MIN_PASSWORD_LENGTH} ký tự."


class CaseNotFound(NotFound):
    code = "case_not_found"
    message = "Không tìm thấy hồ sơ cần kiểm tra."


class CaseVersionConflict(Conflict):
    code = "case_already_decided"
    message = "Hồ sơ đã được xử lý hoặc đã thay đổi. Vui lòng tải lại trước khi quyết định."


class OwnAccountCase(Forbidden):
    code = "own_account_case"
    message = "Bạn không được quyết định hồ sơ liên quan đến tài khoản của chính mình."


class AccountNotACandidate(DomainError):
    status = 422
    code = "account_not_a_candidate"
    message = "Tài khoản được chọn không nằm trong danh sách tài khoản của hồ sơ."


class CandidateNotActive(Conflict):
    code = "account_not_active"
    message = "Tài khoản được chọn đang bị khoá hoặc đã đóng."


class AlreadyLinked(Conflict):
    code = "already_linked"
    message = (
        "Tài khoản hoặc danh tính VNeID này đã được liên kết. Hãy huỷ liên kết cũ trước khi "
        "phê duyệt."
    )


class LinkNotFound(NotFound):
    code = "link_not_found"
    message = "Không tìm thấy liên kết định danh điện tử của tài khoản."


class InvalidSecondFactor(Unauthorized):
    code = "invalid_second_factor"
    message = "Mã xác thực hoặc mã khôi phục không đúng hoặc đã được dùng."
    audit_event = AuditEventType.STAFF_SIGN_IN


class SecondFactorNotEnrolled(Forbidden):
    code = "second_factor_not_enrolled"
    message = (
        "Tài khoản cán bộ chưa đăng ký xác thực hai lớp. Hãy đăng nhập trang quản trị /admin "
        "để đăng ký bằng mã QR trước."
    )
    audit_event = AuditEventType.STAFF_SIGN_IN


class StaffUserNotFound(NotFound):
    code = "staff_user_not_found"
    message = "Không tìm thấy tài khoản cán bộ."


class StaffOwnAccountUnknown(DomainError):
    status = 422
    code = "staff_citizen_id_unknown"
    message = "Không có tài khoản VssID nào mang số định danh cá nhân này."


class StaffSelfChange(Forbidden):
    code = "staff_self_change"
    message = "Bạn không thể tự khoá hoặc đổi vai trò của chính mình."


class CaseAssignedElsewhere(Conflict):
    code = "case_assigned_elsewhere"
    message = (
        "Hồ sơ đang được cán bộ khác xử lý. Hãy chọn hồ sơ khác hoặc nhờ quản trị phân công lại."
    )


class OwnDecision(Forbidden):
    code = "own_decision"
    message = (
        "Quyết định cần một cán bộ phê duyệt khác xác nhận; bạn không thể xác nhận quyết định "
        "của chính mình."
    )


class AccountStatusUnchanged(Conflict):
    code = "account_status_unchanged"
    message = "Tài khoản đã ở trạng thái này."


class StaffChangeIncomplete(DomainError):
    status = 422
    code = "staff_change_incomplete"
    message = "Thiếu thông tin cho thay đổi này (mật khẩu mới hoặc vai trò mới)."


class ReasonRequired(DomainError):
    status = 422
    code = "reason_required"
    message = "Hãy ghi lý do (ít nhất 3 ký tự) cho quyết định này."


class UnknownConsoleAction(NotFound):
    code = "unknown_action"
    message = "Thao tác không tồn tại."
