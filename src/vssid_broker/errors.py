"""Domain errors: one exception type with a stable code, turned into problem+json or a page.

Routes never build error responses themselves; they raise, and `app.py` installs one handler
that speaks RFC 9457 to API callers and Vietnamese HTML to browsers.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """An error a caller can cause or must be told about.

    `code` is stable and documented (clients branch on it); `message` is shown to the person,
    in Vietnamese; `detail` is for developers and never carries secrets or citizen IDs.
    """

    status: int = 400
    code: str = "bad_request"
    message: str = "Yêu cầu không hợp lệ."
    headers: dict[str, str] = {}  # noqa: RUF012 - read-only; e.g. WWW-Authenticate on a 401

    def __init__(
        self,
        detail: str | None = None,
        *,
        code: str | None = None,
        message: str | None = None,
        status: int | None = None,
        extensions: dict[str, Any] | None = None,
    ) -> None:
        self.code = code or self.code
        self.extensions = extensions or {}
        """RFC 9457 §3.2 extension members for API callers (never secrets of someone else)."""
        self.message = message or self.message
        self.status = status or self.status
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
