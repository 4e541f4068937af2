"""Why a VNeID login was refused: one stable code per reason, with the Vietnamese message.

Codes are part of the API (the app branches on them); messages are what the person reads.
"""

from __future__ import annotations

from vssid_broker.errors import DomainError


class LoginRefused(DomainError):
    """The login cannot go on; nothing was linked and no token was issued."""

    status = 400
    code = "login_refused"
    message = "Không thể đăng nhập bằng tài khoản định danh điện tử. Vui lòng thử lại."


class LoginStateInvalid(LoginRefused):
    status = 400
    code = "login_state_invalid"
    message = (
        "Phiên đăng nhập không hợp lệ hoặc đã hết hạn. Vui lòng bắt đầu đăng nhập lại "
        "từ trang VssID."
    )


class LoginNotFromThisBrowser(LoginRefused):
    code = "login_browser_mismatch"
    message = (
        "Yêu cầu đăng nhập không xuất phát từ trình duyệt này. Vì an toàn, vui lòng bắt đầu "
        "đăng nhập lại."
    )


class ProviderIssuerMismatch(LoginRefused):
    code = "vneid_issuer_mismatch"
    message = "Phản hồi không đến từ VNeID. Vì an toàn, đăng nhập đã bị từ chối."


class ProviderDenied(LoginRefused):
    code = "vneid_access_denied"
    message = "Bạn đã huỷ hoặc không cho phép chia sẻ thông tin tại VNeID."


class ProviderError(LoginRefused):
    code = "vneid_error"
    message = "VNeID báo lỗi khi xác thực. Vui lòng thử lại sau ít phút."


class ProviderUnavailable(LoginRefused):
    status = 503
    code = "vneid_unavailable"
    message = "Hệ thống định danh điện tử VNeID đang tạm thời không phản hồi. Vui lòng thử lại sau."


class ProviderRefusedRequest(LoginRefused):
    """VNeID refused a request the broker made (a PAR request): a configuration problem."""

    status = 502
    code = "vneid_request_refused"
    message = "VNeID không chấp nhận yêu cầu đăng nhập. Vui lòng thử lại sau hoặc liên hệ hỗ trợ."


class CodeExchangeFailed(LoginRefused):
    status = 400
    code = "vneid_code_exchange_failed"
    message = "Không xác nhận được kết quả đăng nhập với VNeID. Vui lòng đăng nhập lại."


class IdTokenRejected(LoginRefused):
    """The ID token failed a check of OpenID Connect Core §3.1.3.7; `code` names which."""

    status = 400
    code = "id_token_invalid"
    message = "Thông tin xác thực từ VNeID không hợp lệ. Vì an toàn, đăng nhập đã bị từ chối."


class AssuranceTooLow(LoginRefused):
    status = 403
    code = "vneid_level_insufficient"
    message = (
        "Tài khoản định danh điện tử của bạn chưa đạt mức độ 2. Để đăng nhập VssID, vui lòng "
        "kích hoạt tài khoản định danh điện tử mức độ 2 tại cơ quan Công an gần nhất."
    )


class ClaimsIncomplete(LoginRefused):
    code = "vneid_claims_incomplete"
    message = (
        "VNeID không cung cấp đủ thông tin định danh (số định danh cá nhân, họ tên, ngày sinh)."
    )


class AppRequestInvalid(LoginRefused):
    code = "invalid_request"
    message = "Yêu cầu từ ứng dụng không hợp lệ."


class AppVerifierMismatch(LoginRefused):
    code = "invalid_grant"
    message = "Mã xác minh của ứng dụng không khớp. Vui lòng đăng nhập lại."
