"""Record what the Baton sidebar panels draw, without a window: the offscreen stand-in for a UI screenshot.

The ``bpy`` module has no window or GPU drawing, so the panels' own ``draw(context)`` methods are run against a
:class:`LayoutRecorder` that has the ``UILayout`` methods the panels use (``row``, ``column``, ``box``, ``split``,
``label``, ``prop``, ``operator``, ``progress``, ``template_list``, ...) and records every call as a tree. Property
widgets resolve their label and current value through RNA, so the record shows the real settings.
``scripts/render_panel_png.py`` (backend environment, matplotlib) paints the record in Blender's dark theme.

Usage (Blender environment)::

    PYTHONPATH=$PWD .venv-blender/bin/python scripts/panel_snapshot.py OUT.json   # add-on must be importable

The tests use :func:`record_panel` to check what a panel shows in each state (e.g. the Start button when no backend
answers).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Node:
    """One recorded layout call: ``kind`` (row, label, prop, operator, ...), its text/icon and children."""

    kind: str
    text: str = ""
    icon: str = ""
    value: str = ""
    extra: dict = field(default_factory=dict)
    children: list = field(default_factory=list)

    def to_dict(self) -> dict:
        out = {"kind": self.kind, "text": self.text, "icon": self.icon, "value": self.value, **self.extra}
        if self.children:
            out["children"] = [c.to_dict() for c in self.children]
        return out

    def walk(self):
        yield self
        for child in self.children:
            yield from child.walk()


class _OperatorProperties:
    """What ``layout.operator`` returns: attribute writes are recorded as the operator's properties."""

    def __init__(self, node: Node) -> None:
        object.__setattr__(self, "_node", node)

    def __setattr__(self, name: str, value: Any) -> None:
        self._node.extra.setdefault("properties", {})[name] = value


def _rna_text(data: Any, prop: str, text: str | None) -> tuple[str, str]:
    """(label, shown value) of ``data.prop`` through RNA."""
    rna = data.bl_rna.properties[prop]
    label = rna.name if text is None else text
    value = getattr(data, prop)
    if rna.type == "ENUM":
        items = {item.identifier: item.name for item in rna.enum_items}
        value = items.get(value, value)
    elif rna.type == "FLOAT":
        value = f"{value:.{max(0, min(rna.precision, 3))}f}"
    elif rna.type == "POINTER":
        value = getattr(value, "name", "") if value is not None else ""
    return label, str(value)


class LayoutRecorder:
    """A stand-in for ``bpy.types.UILayout`` that records the calls made on it."""

    def __init__(self, node: Node | None = None) -> None:
        self._node = node or Node("panel")
        self.use_property_split = False
        self.use_property_decorate = True
        self.enabled = True
        self.active = True
        self.alert = False
        self.scale_y = 1.0
        self.scale_x = 1.0
        self.alignment = "EXPAND"

    @property
    def node(self) -> Node:
        return self._node

    def _child(self, kind: str, **kwargs) -> LayoutRecorder:
        node = Node(kind, extra={"enabled": self.enabled, "active": self.active, **kwargs})
        self._node.children.append(node)
        child = LayoutRecorder(node)
        child.use_property_split, child.enabled, child.active = self.use_property_split, self.enabled, self.active
        return child

    def row(self, align: bool = False, heading: str = "", **_: Any) -> LayoutRecorder:
        return self._child("row", align=align)

    def column(self, align: bool = False, heading: str = "", **_: Any) -> LayoutRecorder:
        return self._child("column", align=align)

    def box(self) -> LayoutRecorder:
        return self._child("box")

    def split(self, factor: float = 0.0, align: bool = False) -> LayoutRecorder:
        return self._child("split", factor=factor)

    def separator(self, factor: float = 1.0, **_: Any) -> None:
        self._node.children.append(Node("separator"))

    def label(self, text: str = "", icon: str = "NONE", **_: Any) -> None:
        self._node.children.append(Node("label", text=text, icon=icon))

    def prop(self, data: Any, prop: str, text: str | None = None, icon: str = "NONE", expand: bool = False,
             **_: Any) -> None:  # fmt: skip
        label, value = _rna_text(data, prop, text)
        rna = data.bl_rna.properties[prop]
        extra = {"type": rna.type, "split": self.use_property_split, "expand": expand,
                 "enabled": self.enabled, "active": self.active}  # fmt: skip
        if rna.type == "ENUM" and expand:
            extra["options"] = [item.name for item in rna.enum_items]
        self._node.children.append(Node("prop", text=label, icon=icon, value=value, extra=extra))

    def operator(self, idname: str, text: str | None = None, icon: str = "NONE", emboss: bool = True,
                 **_: Any) -> _OperatorProperties:  # fmt: skip
        if text is None:
            module, name = idname.split(".")
            text = getattr(getattr(__import__("bpy").ops, module), name).get_rna_type().name
        node = Node("operator", text=text, icon=icon, extra={"idname": idname, "enabled": self.enabled,
                                                             "scale_y": self.scale_y})  # fmt: skip
        self._node.children.append(node)
        return _OperatorProperties(node)

    def progress(self, factor: float = 0.0, type: str = "BAR", text: str = "", **_: Any) -> None:  # noqa: A002
        self._node.children.append(Node("progress", text=text, value=f"{factor:.3f}"))

    def template_icon(self, icon_value: int = 0, scale: float = 1.0, **_: Any) -> None:
        self._node.children.append(Node("icon", value=str(icon_value), extra={"scale": scale}))

    def template_list(self, listtype_name: str, list_id: str, dataptr: Any, propname: str, active_dataptr: Any,
                      active_propname: str, rows: int = 5, **_: Any) -> None:  # fmt: skip
        import bpy

        ui_list = getattr(bpy.types, listtype_name)
        node = Node("list", extra={"rows": rows, "active": getattr(active_dataptr, active_propname)})
        for index, item in enumerate(getattr(dataptr, propname)):
            row = LayoutRecorder(Node("item"))
            ui_list.draw_item(None, bpy.context, row, dataptr, item, 0, active_dataptr, active_propname, index)
            node.children.append(row.node)
        self._node.children.append(node)


def record_panel(panel_cls: type, context: Any = None) -> Node:
    """Run ``panel_cls.draw`` against a recorder; returns the recorded tree (root kind ``panel``)."""
    import bpy

    context = context or bpy.context
    holder = type("PanelStandIn", (), {})()
    holder.layout = LayoutRecorder(Node("panel", text=panel_cls.bl_label))
    panel_cls.draw(holder, context)
    return holder.layout.node


def texts(node: Node) -> list[str]:
    """Every label/prop/operator text in the tree, in drawing order."""
    return [n.text for n in node.walk() if n.text]


PANELS = ("BATON_PT_backend", "BATON_PT_generate", "BATON_PT_generate_text", "BATON_PT_search", "BATON_PT_result",
          "BATON_PT_rigs")


def record_all() -> dict:
    """Every Baton panel of the enabled add-on, in sidebar order: ``{"panels": [tree, ...]}``."""
    import bpy

    return {"panels": [record_panel(getattr(bpy.types, name)).to_dict() for name in PANELS]}


def main(argv: list[str]) -> int:
    """Record every Baton panel of the enabled add-on into ``argv[0]`` (JSON)."""
    import bpy

    record = {"blender": bpy.app.version_string, **record_all()}
    with open(argv[0], "w", encoding="utf-8") as handle:
        json.dump(record, handle, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
