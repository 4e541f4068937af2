"""What drawing one health-insurance card costs the broker's process (CPU, not wall time).

    python3 bench/health_card.py [--count 50]

Renders the demo card of Nguyễn Văn An as PNG and as SVG, repeatedly, and prints the CPU time
per image, split into the QR encoding (segno) and the rest. The routes run this in a worker
thread, so it costs throughput, not the event loop's latency.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import date

from vssid_broker.accounts import health_card
from vssid_broker.accounts.models import Account, HealthInsuranceCard

ACCOUNT = Account(
    full_name="Nguyễn Văn An", birth_date=date(1985, 3, 12), gender="male", bhxh_code="0112345678"
)
CARD = HealthInsuranceCard(
    card_code="DN4010112345678",
    benefit_level=4,
    primary_care_facility="Bệnh viện Đa khoa Xanh Pôn",
    valid_from=date(2026, 1, 1),
    valid_to=date(2026, 12, 31),
    facility_code="01-024",
    issued_on=date(2025, 12, 15),
    managing_office_code="0101",
    five_years_from=date(2013, 7, 1),
    holder_address="Số 12 phố Hàng Bài, phường Hoàn Kiếm, Hà Nội",
)


def measure(name: str, count: int, operation: Callable[[], object]) -> None:
    operation()  # fonts loaded, caches warm
    started = time.process_time()
    for _ in range(count):
        operation()
    print(f"{name:<24} {(time.process_time() - started) / count * 1000:7.1f} ms CPU each")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=50)
    count = parser.parse_args().count
    measure("QR text", count, lambda: health_card.qr_text(ACCOUNT, CARD))
    measure("QR symbol (segno)", count, lambda: health_card.qr_symbol(ACCOUNT, CARD))
    measure("PNG card", count, lambda: health_card.render_png(ACCOUNT, CARD))
    measure("SVG card", count, lambda: health_card.render_svg(ACCOUNT, CARD))


if __name__ == "__main__":
    main()
