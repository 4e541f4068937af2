"""Every kind of audit event is named once (`audit.events`) and has a meaning in Vietnamese
for the console's audit page: no event the code writes can reach a clerk as its stored name."""

from __future__ import annotations

import ast
from pathlib import Path

import vssid_broker
from tests.test_error_catalogues import every_error_class
from vssid_broker.audit import events
from vssid_broker.audit.events import AuditEventType

SOURCE = Path(vssid_broker.__file__).parent


def test_every_event_type_has_a_vietnamese_label_of_its_own() -> None:
    assert set(events.LABELS) == set(AuditEventType)
    labels = list(events.LABELS.values())
    assert all(not label.isascii() for label in labels)
    assert len(set(labels)) == len(labels)  # two kinds never read alike


def test_every_refusal_is_recorded_under_a_named_event() -> None:
    named = {cls.audit_event for cls in every_error_class() if cls.audit_event is not None}
    assert named and all(isinstance(event, AuditEventType) for event in named)


def test_no_code_writes_an_event_type_spelled_out() -> None:
    """`audit.record` takes an `AuditEventType` (mypy holds every caller to it); this catches
    the caller that would get round the type with a string built on the spot."""
    spelled: list[str] = []
    for path in SOURCE.rglob("*.py"):
        if path == Path(events.__file__) or "vneid_sim" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            for keyword in node.keywords:
                if keyword.arg in ("event_type", "audit_event") and isinstance(
                    keyword.value, ast.Constant | ast.JoinedStr
                ):
                    spelled.append(f"{path.relative_to(SOURCE)}:{node.lineno}")
    assert spelled == []


def test_a_stored_name_this_version_does_not_know_never_shows_as_itself() -> None:
    assert events.label("account.locked") == "Khoá tài khoản VssID"
    assert events.label("something.new_in_a_later_version") == "Sự kiện khác"
