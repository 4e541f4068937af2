"""Each error code is defined once, in the catalogue of its audience, with a message a person
can read (Vietnamese) and a status; nothing else in the code invents a code of its own."""

from __future__ import annotations

import importlib
import pkgutil
from collections import Counter

import vssid_broker
from vssid_broker.errors import DomainError

CATALOGUES = (
    "vssid_broker.errors.login",
    "vssid_broker.errors.tokens",
    "vssid_broker.errors.staff",
    "vssid_broker.errors.requests",
)


def every_error_class() -> set[type[DomainError]]:
    for module in pkgutil.walk_packages(vssid_broker.__path__, "vssid_broker."):
        if ".vneid_sim" not in module.name and ".cli" not in module.name:
            importlib.import_module(module.name)
    found: set[type[DomainError]] = set()
    pending = [DomainError]
    while pending:
        cls = pending.pop()
        found.add(cls)
        pending.extend(cls.__subclasses__())
    return found


def test_every_code_is_defined_once_in_its_audiences_catalogue() -> None:
    defining = [cls for cls in every_error_class() if "code" in vars(cls)]
    outside = [
        f"{cls.__module__}.{cls.__qualname__}"
        for cls in defining
        if cls.__module__ not in (*CATALOGUES, "vssid_broker.errors")
    ]
    assert outside == []
    for catalogue in CATALOGUES:
        codes = Counter(cls.code for cls in defining if cls.__module__ == catalogue)
        assert [code for code, n in codes.items() if n > 1] == [], catalogue


def test_every_error_speaks_vietnamese_to_the_person() -> None:
    for cls in every_error_class():
        assert cls.message and not cls.message.isascii(), cls
        assert 400 <= cls.status < 600, cls


def test_a_variant_outside_the_catalogues_changes_neither_code_nor_message() -> None:
    for cls in every_error_class():
        if cls.__module__.startswith("vssid_broker.errors"):
            continue
        assert "code" not in vars(cls) and "message" not in vars(cls), cls
