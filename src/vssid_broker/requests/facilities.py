"""Demo reference data: primary-care facilities by province, and the change window.

The agency's facility register is not public; these few per province (codes as on the card,
`PP-NNN`: province, then facility) let the demo and the tests choose among real-looking ones.
A deployment replaces this table with the agency's register (same shape).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta


@dataclass(frozen=True)
class Facility:
    code: str
    name: str

    @property
    def province(self) -> str:
        return self.code[:2]


_FACILITIES = (
    Facility("01-024", "Bệnh viện Đa khoa Xanh Pôn"),
    Facility("01-031", "Bệnh viện Đa khoa Đống Đa"),
    Facility("01-112", "Trạm y tế phường Hàng Bài"),
    Facility("19-006", "Bệnh viện Đa khoa Trung ương Thái Nguyên"),
    Facility("19-014", "Trung tâm Y tế thành phố Thái Nguyên"),
    Facility("22-011", "Trung tâm Y tế thành phố Hạ Long"),
    Facility("22-002", "Bệnh viện Đa khoa tỉnh Quảng Ninh"),
    Facility("36-004", "Bệnh viện Đa khoa tỉnh Nam Định"),
    Facility("36-019", "Trạm y tế phường Nam Định"),
    Facility("46-001", "Bệnh viện Trung ương Huế"),
    Facility("46-015", "Bệnh viện Đa khoa thành phố Huế"),
    Facility("56-012", "Trạm y tế phường Nha Trang"),
    Facility("56-001", "Bệnh viện Đa khoa tỉnh Khánh Hoà"),
    Facility("66-003", "Bệnh viện Đa khoa vùng Tây Nguyên"),
    Facility("66-010", "Trung tâm Y tế thành phố Buôn Ma Thuột"),
    Facility("75-017", "Trạm y tế phường Trấn Biên"),
    Facility("75-001", "Bệnh viện Đa khoa Đồng Nai"),
    Facility("79-031", "Trạm y tế phường Bến Thành"),
    Facility("79-024", "Bệnh viện Nhân dân Gia Định"),
    Facility("79-002", "Bệnh viện Chợ Rẫy"),
    Facility("89-020", "Trung tâm Y tế huyện Tân Phú"),
    Facility("89-001", "Bệnh viện Đa khoa trung tâm An Giang"),
    Facility("94-001", "Bệnh viện Đa khoa tỉnh Sóc Trăng"),
    Facility("94-008", "Trung tâm Y tế huyện Mỹ Xuyên"),
)


def facilities_of(province: str | None) -> list[Facility]:
    return [facility for facility in _FACILITIES if facility.province == province]


def province_of_card(card_code: str, facility_code: str | None) -> str:
    """The province the person is insured in: the card's registered facility's, or else the
    card code's own province digits (`DN4 01 ...`: positions 4–5)."""
    if facility_code and facility_code[:2].isdigit():
        return facility_code[:2]
    return card_code[3:5]


@dataclass(frozen=True)
class ChangeWindow:
    opens_on: date
    closes_on: date
    """The last day a change may be asked (inclusive)."""

    def contains(self, day: date) -> bool:
        return self.opens_on <= day <= self.closes_on


def quarter_start(day: date) -> date:
    return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def change_window(today: date, window_days: int) -> ChangeWindow:
    """The window of today's quarter if it is still open or to come, else the next quarter's.

    The Health Insurance Law as amended (in force 1 July 2025) allows a change in the first 15
    days of each quarter; before it, the first 10 days of the quarter's first month (Law 2008,
    Art. 26). `window_days` (VSSID_PRIMARY_CARE_CHANGE_WINDOW_DAYS) is that number."""
    start = quarter_start(today)
    window = ChangeWindow(start, start + timedelta(days=window_days - 1))
    if today <= window.closes_on:
        return window
    following = quarter_start(start + timedelta(days=100))
    return ChangeWindow(following, following + timedelta(days=window_days - 1))
