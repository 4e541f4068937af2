"""The simulator stands alone: it imports nothing of the broker, and its page driver needs only
httpx and the standard library. Checked on the source, so a lazy import inside a function counts
too."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import vssid_broker.vneid_sim

PACKAGE_DIR = Path(vssid_broker.vneid_sim.__file__).parent


def imported_modules(path: Path) -> set[str]:
    """Absolute names of everything the file imports (relative imports resolved)."""
    names: set[str] = set()
    package = "vssid_broker.vneid_sim"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0]
                names.add(f"{base}.{node.module}" if node.module else base)
            else:
                names.add(node.module or "")
    return names


def test_the_simulator_imports_nothing_of_the_broker() -> None:
    offending = {
        f"{path.name}: {name}"
        for path in PACKAGE_DIR.rglob("*.py")
        for name in imported_modules(path)
        if name.split(".")[0] == "vssid_broker" and not name.startswith("vssid_broker.vneid_sim")
    }
    assert not offending


def test_the_driver_needs_only_httpx_and_the_standard_library() -> None:
    roots = {name.split(".")[0] for name in imported_modules(PACKAGE_DIR / "driver.py")}
    assert roots - {"httpx", "__future__"} <= set(sys.stdlib_module_names)
