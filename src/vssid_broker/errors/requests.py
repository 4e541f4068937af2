"""What a person is told about their requests to the agency (app API and account pages), and
what staff are told while processing them. Every refusal here changes nothing."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from vssid_broker.audit.events import AuditEventType
from vssid_broker.errors import Conflict, DomainError, Forbidden, NotFound, Unauthorized


class StepUpRequired(Unauthorized):
    """RFC 9470 §3: the sign-in behind the token is too old, or not a VNeID level-2 one. The
    challenge says what would do: a sign-in at most `max_age` seconds old, at `acr_values`."""

    code = "step_up_required"
    message = (
        "Để gửi yêu cầu, bạn cần đăng nhập lại bằng tài khoản định danh điện tử VNeID mức 2. "
        "Vui lòng xác thực lại rồi gửi tiếp."
    )
    audit_event = AuditEventType.REQUEST_STEP_UP

    def __init__(self, detail: str, *, max_age: int, acr_values: Sequence[str]) -> None:
        acr = " ".join(acr_values)
        super().__init__(detail, extensions={"max_age": max_age, "acr_values": acr})
        self.max_age = max_age
        self.headers = {
            "WWW-Authenticate": (
                'Bearer error="insufficient_user_authentication", '
                f'error_description="A VNeID sign-in within {max_age} seconds is required", '
                f'max_age={max_age}, acr_values="{acr}"'
            )
        }


class RequestInvalid(DomainError):
    """A request whose fields the rules refuse (the schema's own 422 aside)."""

    status = 422
    code = "request_invalid"
    message = "Thông tin yêu cầu không hợp lệ. Vui lòng kiểm tra lại."


class RequestKindUnknown(RequestInvalid):
    code = "request_kind_unknown"
    message = (
        "Loại yêu cầu không được hỗ trợ. Có thể gửi: cấp lại thẻ BHYT, đổi nơi đăng ký khám "
        "chữa bệnh ban đầu, đổi số điện thoại."
    )


class FacilityNotInProvince(RequestInvalid):
    code = "facility_not_in_province"
    message = (
        "Cơ sở khám chữa bệnh đã chọn không thuộc danh sách của tỉnh/thành phố nơi bạn tham gia "
        "BHYT. Vui lòng chọn cơ sở trong danh sách."
    )


class PrimaryCareWindowClosed(RequestInvalid):
    """Outside the first days of the quarter: says when the next window opens."""

    code = "primary_care_window_closed"
    message = "Chỉ được đổi nơi đăng ký khám chữa bệnh ban đầu trong những ngày đầu của mỗi quý."

    def __init__(self, detail: str, *, opens_on: date, closes_on: date) -> None:
        super().__init__(
            detail,
            extensions={"opens_on": opens_on.isoformat(), "closes_on": closes_on.isoformat()},
        )
        self.opens_on = opens_on
        self.closes_on = closes_on


class PhoneNumberInvalid(RequestInvalid):
    code = "phone_number_invalid"
    message = (
        "Số điện thoại mới không hợp lệ hoặc trùng số đang dùng. Vui lòng nhập số di động "
        "10 chữ số bắt đầu bằng 0."
    )


class HealthCardRequired(RequestInvalid):
    code = "health_card_required"
    message = (
        "Bạn chưa có thẻ BHYT được ghi nhận nên chưa thể gửi yêu cầu này. Vui lòng liên hệ cơ "
        "quan BHXH hoặc tổng đài 1900 9068."
    )


class DeliveryAddressMissing(RequestInvalid):
    code = "delivery_address_missing"
    message = "Chưa có địa chỉ nhận thẻ. Vui lòng nhập địa chỉ nhận thẻ BHYT."


class RequestAlreadyOpen(Conflict):
    code = "request_already_open"
    message = (
        "Bạn đang có một yêu cầu cùng loại chưa xử lý xong. Vui lòng chờ kết quả hoặc huỷ yêu "
        "cầu đó trước khi gửi yêu cầu mới."
    )


class RequestNotFound(NotFound):
    code = "request_not_found"
    message = "Không tìm thấy yêu cầu."


class RequestNotCancellable(Conflict):
    code = "request_not_cancellable"
    message = "Yêu cầu đã được tiếp nhận xử lý nên không thể huỷ."


class PhoneCodeWrong(RequestInvalid):
    code = "phone_code_wrong"
    message = "Mã xác nhận không đúng. Vui lòng kiểm tra tin nhắn và nhập lại."


class PhoneCodeExpired(RequestInvalid):
    code = "phone_code_expired"
    message = (
        "Mã xác nhận đã hết hạn hoặc đã nhập sai quá số lần cho phép. Vui lòng huỷ yêu cầu và "
        "gửi lại để nhận mã mới."
    )


class PhoneCodeNotExpected(Conflict):
    code = "phone_code_not_expected"
    message = "Yêu cầu này không chờ mã xác nhận."


class RequestVersionConflict(Conflict):
    """Staff: the optimistic compare-and-set found another version or state."""

    code = "request_changed"
    message = "Yêu cầu đã được xử lý hoặc đã thay đổi. Vui lòng tải lại trước khi thao tác."


class RequestAssignedElsewhere(Conflict):
    code = "request_assigned_elsewhere"
    message = "Yêu cầu đang được cán bộ khác xử lý. Hãy chọn yêu cầu khác."


class RefusalReasonRequired(RequestInvalid):
    code = "refusal_reason_required"
    message = "Từ chối yêu cầu cần ghi rõ lý do cho người dân."


class OwnRequest(Forbidden):
    """Separation of duties: nobody processes a request about their own account."""

    code = "own_request"
    message = "Bạn không được xử lý yêu cầu của chính tài khoản VssID của mình."
