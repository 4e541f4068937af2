"""What the pages call the kinds, statuses and reasons of requests, in Vietnamese: one place
for the person's pages and the staff console."""

from __future__ import annotations

from vssid_broker.requests.models import RequestKind

KIND_LABELS = {
    RequestKind.HEALTH_CARD_REISSUE: "Cấp lại thẻ BHYT",
    RequestKind.PRIMARY_CARE_CHANGE: "Đổi nơi đăng ký khám chữa bệnh ban đầu",
    RequestKind.PHONE_CHANGE: "Đổi số điện thoại",
}
STATUS_LABELS = {
    "awaiting_code": "Chờ xác nhận mã",
    "submitted": "Đã gửi",
    "in_progress": "Đang xử lý",
    "done": "Đã hoàn thành",
    "refused": "Bị từ chối",
    "cancelled": "Đã huỷ",
}
REASON_LABELS = {"lost": "Mất thẻ", "damaged": "Thẻ bị hỏng", "details_wrong": "Sai thông tin"}
DETAIL_LABELS = {
    "reason": "Lý do",
    "delivery_address": "Địa chỉ nhận thẻ",
    "facility_code": "Mã cơ sở khám chữa bệnh",
    "facility_name": "Cơ sở mới",
    "new_phone": "Số điện thoại mới",
}
"""What the details a request carries (`service._details`) are called on a page."""
LABELS = {
    "kinds": KIND_LABELS,
    "statuses": STATUS_LABELS,
    "reasons": REASON_LABELS,
    "details": DETAIL_LABELS,
}
