"""Domain errors: one exception type with a stable code, turned into problem+json or a page.

Routes never build error responses themselves; they raise, and `web/problems.py` is the one
handler that speaks RFC 9457 to API callers and Vietnamese HTML to browsers.

Each audience has one catalogue, and each code is defined once in it, with its status, its
Vietnamese message and the audit event it is recorded under:
- `errors.login`: what a person is told (app or browser) when a sign-in cannot go on;
- `errors.tokens`: what the app, other services and VNeID are told at the token endpoints;
- `errors.staff`: what staff are told by the admin API;
- `errors.requests`: what a person is told about their requests to the agency (and staff
  processing them), including the step-up challenge (RFC 9470).
The catalogues sit below every domain because refusals are raised at several layers (the ID
token check, the linking rules, the web face) and must still be one definition each.
"""

from __future__ import annotations

from typing import Any, ClassVar

from vssid_broker.audit.events import AuditEventType


class CommandRefused(Exception):
    """A command line cannot do what the operator asked; said to them in one line."""


class DomainError(Exception):
    """An error a caller can cause or must be told about.

    `code` is stable and documented (clients branch on it); `message` is shown to the person,
    in Vietnamese; `detail` is for developers and never carries secrets or citizen IDs.
    """

    status: int = 400
    code: str = "bad_request"
    message: str = "Yêu cầu không hợp lệ."
    headers: dict[str, str] = {}  # noqa: RUF012 - read-only; e.g. WWW-Authenticate on a 401
    audit_event: ClassVar[AuditEventType | None] = None
    """The audit trail's `event_type` a refusal of this kind is recorded under (its outcome is
    the code); None where the refusal itself is not an event worth keeping."""

    def __init__(
        self,
        detail: str | None = None,
        *,
        extensions: dict[str, Any] | None = None,
    ) -> None:
        self.extensions = extensions or {}
        """RFC 9457 §3.2 extension members for API callers (never secrets of someone else)."""
        self.detail = detail or self.message
        super().__init__(f"{self.code}: {self.detail}")


class NotFound(DomainError):
    status = 404
    code = "not_found"
    message = "Không tìm thấy nội dung bạn yêu cầu."


class Unauthorized(DomainError):
    status = 401
    code = "unauthorized"
    message = "Bạn cần đăng nhập để tiếp tục."


class Forbidden(DomainError):
    status = 403
    code = "forbidden"
    message = "Bạn không có quyền thực hiện thao tác này."


class Conflict(DomainError):
    status = 409
    code = "conflict"
    message = "Yêu cầu xung đột với trạng thái hiện tại."


class AccountNotFound(NotFound):
    """Said to the person about their own account and to staff about the one they named."""

    code = "account_not_found"
    message = "Không tìm thấy tài khoản VssID."


class HealthCardAbsent(NotFound):
    """Said to the person (app or account page) instead of a card image."""

    code = "health_card_absent"
    message = (
        "Bạn chưa có thẻ bảo hiểm y tế còn ghi nhận trên VssID. Nếu bạn đang tham gia BHYT, vui "
        "lòng liên hệ cơ quan BHXH hoặc tổng đài 1900 9068."
    )


class HealthCardExpired(DomainError):
    """The card exists but its validity has ended: no image a clinic could mistake for valid."""

    status = 410
    code = "health_card_expired"
    message = (
        "Thẻ bảo hiểm y tế của bạn đã hết hạn sử dụng. Vui lòng gia hạn thẻ (qua đơn vị đang "
        "đóng BHYT cho bạn, đại lý thu hoặc cơ quan BHXH) để tiếp tục khám chữa bệnh BHYT."
    )


class RetryLater(DomainError):
    """A refusal that is over after a while: said with `Retry-After` (RFC 9110 §10.2.3)."""

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after
        self.headers = {"Retry-After": str(retry_after)}


class RateLimited(RetryLater):
    """Too many requests of one kind from one client or at one identifier (RFC 6585 §4)."""

    status = 429
    code = "rate_limited"
    message = "Bạn đã thao tác quá nhiều lần trong thời gian ngắn. Vui lòng thử lại sau ít phút."


class ServiceUnavailable(RetryLater):
    """The database cannot be reached: nothing was done, the request may be retried."""

    status = 503
    code = "service_unavailable"
    message = "Hệ thống đang tạm thời gián đoạn. Vui lòng thử lại sau ít phút."


class StoredDataRefused(DomainError):
    """A sealed value read for this request did not open for its row (`sealing.SealedValueRefused`:
    copied from another row, column or table, or altered). The server's data is at fault, not
    the caller; nothing of it is shown, and the operator has a log line naming the place."""

    status = 500
    code = "stored_data_refused"
    message = (
        "Không thể hiển thị hồ sơ này vì dữ liệu lưu trữ không qua được kiểm tra toàn vẹn. Bộ "
        "phận kỹ thuật đã được báo; nếu cần hỗ trợ, vui lòng gọi tổng đài 1900 9068."
    )


class PayloadTooLarge(DomainError):
    status = 413
    code = "payload_too_large"
    message = "Dữ liệu gửi lên quá lớn."


class HeadersTooLarge(DomainError):
    """RFC 6585 §5: the request's header fields (a huge cookie) are larger than the cap."""

    status = 431
    code = "headers_too_large"
    message = "Yêu cầu có phần đầu (header, cookie) quá lớn."


class InputRefused(DomainError):
    """Refused at the edge, before any route: a NUL character, JSON nested too deep. The same
    code as a route's own invalid request, so a client handles both alike."""

    code = "invalid_request"
    message = "Yêu cầu chứa dữ liệu không hợp lệ."
