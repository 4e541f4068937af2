"""A flame graph (SVG) of py-spy's collapsed stacks, written beside a profile.

    python3 bench/flamegraph.py bench/results/profiles/profile-refresh.collapsed

Each frame is a box as wide as its share of the samples, callers below callees; hovering a box
shows its frame and share. Python frames are warm, native frames (`--native`: the C of
asyncpg, uvloop, cryptography, the interpreter, libc) cool. No dependency beyond the standard
library, so the harness draws one with every profile.
"""

from __future__ import annotations

import argparse
import zlib
from dataclasses import dataclass, field
from html import escape
from pathlib import Path

WIDTH, ROW, FONT = 1200, 16, 11


@dataclass
class Frame:
    samples: int = 0
    callees: dict[str, Frame] = field(default_factory=dict)


def read_stacks(collapsed: Path) -> Frame:
    root = Frame()
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        samples = int(count)
        root.samples += samples
        frame = root
        for name in stack.split(";"):
            frame = frame.callees.setdefault(name, Frame())
            frame.samples += samples
    return root


def _depth(frame: Frame) -> int:
    return 1 + max((_depth(callee) for callee in frame.callees.values()), default=0)


def _colour(name: str) -> str:
    shade = zlib.crc32(name.encode()) % 60
    if ".py" in name:
        return f"rgb(230,{110 + shade},{40 + shade // 2})"
    return f"rgb({70 + shade},{140 + shade},210)"


def write_svg(collapsed: Path, svg: Path, title: str) -> None:
    root = read_stacks(collapsed)
    height = (_depth(root) + 2) * ROW
    scale = WIDTH / max(1, root.samples)
    boxes: list[str] = []

    def draw(name: str, frame: Frame, x: float, depth: int) -> None:
        width = frame.samples * scale
        if width < 0.5:
            return  # too narrow to see: its samples still count in its callers
        y = height - (depth + 1) * ROW
        share = 100 * frame.samples / max(1, root.samples)
        label = name.split(" (", 1)[0]
        fits = int(width / (FONT * 0.6))
        text = label if len(label) <= fits else label[: max(0, fits - 2)] + ".." if fits > 3 else ""
        boxes.append(
            f"<g><title>{escape(name)}: {frame.samples} samples, {share:.1f}%</title>"
            f'<rect x="{x:.1f}" y="{y}" width="{width:.1f}" height="{ROW - 1}"'
            f' fill="{_colour(name)}"/>'
            f'<text x="{x + 2:.1f}" y="{y + ROW - 4}">{escape(text)}</text></g>'
        )
        for callee_name, callee in sorted(frame.callees.items()):
            draw(callee_name, callee, x, depth + 1)
            x += callee.samples * scale

    x = 0.0
    for name, frame in sorted(root.callees.items()):
        draw(name, frame, x, 0)
        x += frame.samples * scale
    svg.write_text(
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}"'
        f' font-family="monospace" font-size="{FONT}">'
        f'<rect width="100%" height="100%" fill="white"/>'
        f'<text x="4" y="{ROW - 3}">{escape(title)} ({root.samples} samples)</text>'
        + "".join(boxes)
        + "</svg>\n",
        encoding="utf-8",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("collapsed", type=Path, help="py-spy's raw (collapsed) output")
    args = parser.parse_args()
    svg = args.collapsed.with_suffix(".svg")
    write_svg(args.collapsed, svg, args.collapsed.stem)
    print(svg)


if __name__ == "__main__":
    main()
