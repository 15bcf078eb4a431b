"""Paint the panel record of ``scripts/panel_snapshot.py`` as a PNG in Blender's default dark theme (matplotlib).

This is the offscreen stand-in for a screenshot: the ``bpy`` module cannot open a window, so the layout comes from the
add-on's real ``draw()`` calls (recorded with real property values) and only the painting is ours. Rows split their
width evenly, ``split`` honours its factor, property-split rows put the label right-aligned in the left 40 %, as
Blender does; icons other than the status light are left out.

Usage (backend environment)::

    .venv/bin/python scripts/render_panel_png.py RECORD.json docs/panel.png [STATE]
"""

from __future__ import annotations

import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyBboxPatch, Rectangle  # noqa: E402

WIDTH = 380
LINE = 22
GAP = 3
PAD = 8
THEME = {
    "region": "#303030", "header": "#3d3d3d", "text": "#e6e6e6", "dim": "#8c8c8c", "button": "#545454",
    "field": "#1d1d1d", "enum_on": "#4772b3", "progress": "#4772b3", "box": "#2b2b2b", "border": "#242424",
    "list": "#282828", "list_active": "#334d80",
}  # fmt: skip
LIGHTS = {"SEQUENCE_COLOR_04": "#5fb35f", "SEQUENCE_COLOR_01": "#e0524c", "SEQUENCE_COLOR_03": "#e6c24c",
          "SEQUENCE_COLOR_09": "#8c8c8c", "ERROR": "#e0524c", "INFO": "#6aa0e6", "CHECKMARK": "#5fb35f",
          "X": "#e0524c"}  # fmt: skip
VERTICAL = {"panel", "column", "box", "list"}
GLYPHS = {"FILE_REFRESH": "↻", "FILEBROWSER": "…", "FILE_TICK": "↓", "CANCEL": "✕", "X": "✕"}


def height(node: dict) -> float:
    kind = node["kind"]
    children = node.get("children", [])
    if kind == "separator":
        return LINE / 2
    if kind == "list":
        return max(node.get("rows", 4), len(children)) * LINE + 2 * GAP
    if kind in VERTICAL:
        inner = sum(height(c) + GAP for c in children) - (GAP if children else 0)
        return inner + (2 * GAP + 4 if kind == "box" else 0)
    if kind in ("row", "split", "item"):
        return max((height(c) for c in children), default=LINE)
    return LINE * float(node.get("scale_y", 1.0))


def widths(node: dict, width: float) -> list[float]:
    children = node.get("children", [])
    if not children:
        return []
    if node["kind"] == "split":
        first = width * (node.get("factor") or 0.5)
        return [first] + [(width - first) / max(1, len(children) - 1)] * (len(children) - 1)
    icon_only = [c["kind"] == "operator" and not c.get("text") for c in children]
    fixed = sum(LINE + 2 for flag in icon_only if flag)
    flexible = max(1, len(children) - sum(icon_only))
    return [LINE + 2 if flag else (width - fixed) / flexible for flag in icon_only]


class Painter:
    def __init__(self, ax) -> None:
        self.ax = ax

    def rect(self, x, y, w, h, color, radius=3.0, edge=None):
        self.ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle=f"round,pad=0,rounding_size={radius}",
                                         facecolor=color, edgecolor=edge or color, linewidth=0.8))  # fmt: skip

    def text(self, x, y, s, color=None, ha="left", size=8.6, weight="normal"):
        self.ax.text(x, y, s, color=color or THEME["text"], ha=ha, va="center", fontsize=size, weight=weight,
                     family="DejaVu Sans", clip_on=True)  # fmt: skip

    def light(self, x, y, icon):
        if icon in LIGHTS:
            self.ax.add_patch(plt.Circle((x, y), 4.2, color=LIGHTS[icon]))
            return 12
        return 0

    def node(self, node: dict, x: float, y: float, w: float) -> None:
        kind, children = node["kind"], node.get("children", [])
        h = height(node)
        dim = node.get("enabled") is False or node.get("active") is False
        if kind in VERTICAL and kind != "list":
            if kind == "box":
                self.rect(x, y, w, h, THEME["box"], edge=THEME["border"])
                x, y, w = x + GAP + 2, y + GAP + 2, w - 2 * GAP - 4
            for child in children:
                self.node(child, x, y, w)
                y += height(child) + GAP
        elif kind in ("row", "split", "item"):
            for child, cw in zip(children, widths(node, w), strict=True):
                self.node(child, x, y, cw - (1 if node.get("align") else GAP))
                x += cw
        elif kind == "list":
            self.rect(x, y, w, h, THEME["list"], edge=THEME["border"])
            for i, child in enumerate(children):
                if i == node.get("active"):
                    self.rect(x + 2, y + GAP + i * LINE, w - 4, LINE, THEME["list_active"], radius=2)
                self.node(child, x + 4, y + GAP + i * LINE, w - 8)
        else:
            self.leaf(node, x, y, w, LINE * float(node.get("scale_y", 1.0)), dim)

    def leaf(self, node, x, y, w, h, dim):
        kind, text, value = node["kind"], node.get("text", ""), node.get("value", "")
        color = THEME["dim"] if dim else THEME["text"]
        mid = y + h / 2
        if kind == "label":
            offset = self.light(x + 6, mid, node.get("icon", ""))
            self.text(x + 4 + offset, mid, text, color)
        elif kind == "operator":
            self.rect(x, y + 1, w, h - 2, THEME["button"])
            self.text(x + w / 2, mid, text or GLYPHS.get(node.get("icon", ""), "•"), color, ha="center")
        elif kind == "progress":
            factor = float(value or 0)
            self.rect(x, y + 3, w, h - 6, THEME["field"])
            self.rect(x, y + 3, max(6.0, w * factor), h - 6, THEME["progress"])
            self.text(x + w / 2, mid, text, ha="center", size=8.0)
        elif kind == "prop":
            self.prop(node, x, y, w, h, color)

    def prop(self, node, x, y, w, h, color):
        text, value, kind = node.get("text", ""), node.get("value", ""), node.get("type")
        mid = y + h / 2
        if node.get("split") and kind != "BOOLEAN" and text:
            self.text(x + w * 0.4 - 6, mid, text, THEME["dim"], ha="right")
            x, w, text = x + w * 0.4, w * 0.6, ""
        if kind == "BOOLEAN":
            box_x = x + (w * 0.4 if node.get("split") else 2)
            self.rect(box_x, mid - 6, 12, 12, THEME["enum_on"] if value == "True" else THEME["button"], radius=2)
            if value == "True":
                self.text(box_x + 6, mid, "✓", ha="center", size=8)
            self.text(box_x + 18, mid, text, color)
        elif kind == "ENUM" and node.get("expand"):
            options = node.get("options", [value])
            bw = w / max(1, len(options))
            for i, option in enumerate(options):
                self.rect(x + i * bw, y + 1, bw - 1, h - 2, THEME["enum_on"] if option == value else THEME["button"])
                self.text(x + i * bw + bw / 2, mid, option, color, ha="center")
        elif kind == "ENUM":
            self.rect(x, y + 1, w, h - 2, THEME["button"])
            self.text(x + 6, mid, (f"{text}: " if text else "") + value, color)
            self.text(x + w - 8, mid, "▾", color, ha="right")
        elif kind in ("INT", "FLOAT"):
            self.rect(x, y + 1, w, h - 2, THEME["button"])
            self.text(x + 6, mid, text, color)
            self.text(x + w - 6, mid, value, color, ha="right")
        else:
            self.rect(x, y + 1, w, h - 2, THEME["field"])
            shown = value or text
            fits = int((w - 12) / 6.4)
            if len(shown) > fits:
                shown = "…" + shown[-(fits - 1) :]
            self.text(x + 6, mid, shown, color if value else THEME["dim"])


def render(record: dict, out_path: str) -> None:
    """Draw every recorded panel top to bottom (header bar + body) into ``out_path``."""
    panels = record["panels"]
    total = sum(LINE + 6 + height(p) + 2 * PAD for p in panels) + PAD
    dpi = 100
    fig = plt.figure(figsize=(WIDTH / dpi * 1.0, total / dpi), dpi=dpi * 2)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, WIDTH)
    ax.set_ylim(total, 0)
    ax.axis("off")
    ax.add_patch(Rectangle((0, 0), WIDTH, total, color=THEME["region"]))
    painter = Painter(ax)
    y = PAD / 2
    for panel in panels:
        painter.rect(4, y, WIDTH - 8, LINE + 4, THEME["header"])
        painter.text(12, y + (LINE + 4) / 2, "▾  " + panel.get("text", ""), weight="bold")
        y += LINE + 6 + PAD / 2
        painter.node(panel, 12, y, WIDTH - 24)
        y += height(panel) + PAD * 1.5
    fig.savefig(out_path, dpi=dpi * 2, facecolor=THEME["region"])
    plt.close(fig)


def main(argv: list[str]) -> int:
    """``RECORD.json OUT.png [STATE]``: a record of ``panel_snapshot.main`` or, with ``STATE``, state number
    ``STATE`` of a ``{"states": [...]}`` record written by ``addon_session_blender.py --snapshot``."""
    with open(argv[0], encoding="utf-8") as handle:
        record = json.load(handle)
    if len(argv) > 2:
        record = record["states"][int(argv[2])]
    render(record, argv[1])
    print(argv[1])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
