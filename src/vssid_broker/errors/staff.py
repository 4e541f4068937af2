"""What staff are told by the admin API: sign-in, roles, review cases and links."""

from __future__ import annotations

from vssid_broker.errors import Conflict, DomainError, Forbidden, NotFound, Unauthorized
from vssid_broker.passwords import STAFF_MIN_PASSWORD_LENGTH


class InvalidStaffCredentials(Unauthorized):
    code = "invalid_credentials"
    message = "Tên đăng nhập hoặc mật khẩu không đúng."
    audit_event = "staff.sign_in"


class StaffSignInLocked(DomainError):
    status = 429
    code = "staff_sign_in_locked"
    message = (
        "Tài khoản cán bộ tạm thời bị khoá do nhập sai mật khẩu nhiều lần. Vui lòng thử lại sau."
    )
    audit_event = "staff.sign_in"


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
