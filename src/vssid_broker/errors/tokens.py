"""What the token endpoints tell the app, other VssID services and VNeID: OAuth-style codes
(RFC 6749 §5.2, RFC 6750 §3, RFC 7662, RFC 9449), one class per code."""

from __future__ import annotations

from vssid_broker.audit.events import AuditEventType
from vssid_broker.errors import DomainError, Unauthorized


class InvalidTokenRequest(DomainError):
    """RFC 6749 §5.2 `invalid_request`: a parameter is missing or malformed."""

    code = "invalid_request"
    message = "Yêu cầu thiếu thông tin bắt buộc."


class LogoutTokenRejected(InvalidTokenRequest):
    """Back-Channel Logout 1.0 §2.8: a refused logout token is answered `invalid_request`."""

    message = "Logout token không hợp lệ."


class FrontChannelLogoutRejected(InvalidTokenRequest):
    """Front-Channel Logout 1.0 §3: a request without VNeID's `iss` and a `sid` ends nothing."""

    message = "Yêu cầu đăng xuất từ VNeID không hợp lệ."


class UnsupportedGrantType(DomainError):
    code = "unsupported_grant_type"
    message = "Loại yêu cầu cấp phiên không được hỗ trợ."


class InvalidGrant(DomainError):
    code = "invalid_grant"
    message = "Phiên đăng nhập đã hết hạn hoặc bị thu hồi. Vui lòng đăng nhập lại."
    audit_event = AuditEventType.TOKEN_REFRESH


class RefreshTokenReused(InvalidGrant):
    """A rotated refresh token came back: its family has been revoked (RFC 9700 §4.14.2)."""

    audit_event = AuditEventType.TOKEN_REUSE_DETECTED

    def __init__(self, detail: str, *, account_id: int, family_id: str) -> None:
        super().__init__(detail)
        self.account_id = account_id
        self.family_id = family_id


class InvalidAccessToken(Unauthorized):
    headers = {"WWW-Authenticate": 'Bearer error="invalid_token"'}  # noqa: RUF012 - RFC 6750 §3
    code = "invalid_token"
    message = "Phiên đăng nhập không hợp lệ hoặc đã hết hạn. Vui lòng đăng nhập lại."


class InvalidDpopProof(DomainError):
    code = "invalid_dpop_proof"  # RFC 9449 §5 / §7.1
    message = "Bằng chứng sở hữu khoá (DPoP) không hợp lệ. Vui lòng cập nhật ứng dụng VssID."
    audit_event = AuditEventType.TOKEN_REFRESH


class InvalidServiceClient(Unauthorized):
    code = "invalid_client"
    message = "Dịch vụ gọi không được xác thực."
    headers = {"WWW-Authenticate": 'Basic realm="vssid-broker"'}  # noqa: RUF012 - RFC 6749 §5.2
