"""Add-on preferences: where the backend is, its token, and how to start a local one."""

from __future__ import annotations

import bpy
from bpy.props import BoolProperty, IntProperty, StringProperty

DEFAULT_URL = "http://127.0.0.1:8765"


class BATON_AddonPreferences(bpy.types.AddonPreferences):
    """Backend URL, token and the command that starts a local backend (Edit > Preferences > Add-ons > Baton)."""

    bl_idname = __package__

    backend_url: StringProperty(
        name="Backend URL",
        description="HTTP address of the Baton backend (baton serve); loopback by default",
        default=DEFAULT_URL,
    )
    token: StringProperty(
        name="Token",
        description="Bearer token of the backend; empty reads <user config dir>/baton/token written by baton serve",
        default="",
        subtype="PASSWORD",
    )
    python_path: StringProperty(
        name="Backend Python",
        description="Python of the backend environment (its .venv/bin/python); used when Start Command is empty",
        default="",
        subtype="FILE_PATH",
    )
    start_command: StringProperty(
        name="Start Command",
        description="Full command that starts a local backend, e.g. '/path/.venv/bin/baton serve --port 8765'; "
        "empty runs 'baton serve' from Backend Python or from PATH",
        default="",
    )
    auto_start: BoolProperty(
        name="Start Automatically",
        description="Start the local backend when a job needs it and none is answering",
        default=False,
    )
    startup_timeout_s: IntProperty(
        name="Startup Timeout",
        description="Seconds to wait for a freshly started backend to answer",
        default=60,
        min=5,
        max=600,
        subtype="TIME_ABSOLUTE",
    )

    def draw(self, context):
        layout = self.layout
        layout.prop(self, "backend_url")
        layout.prop(self, "token")
        box = layout.box()
        box.label(text="Local backend", icon="CONSOLE")
        box.prop(self, "start_command")
        box.prop(self, "python_path")
        row = box.row()
        row.prop(self, "auto_start")
        row.prop(self, "startup_timeout_s")


def get(context=None) -> BATON_AddonPreferences:
    """The add-on's preferences (raises ``KeyError`` if the add-on is not enabled)."""
    context = context or bpy.context
    return context.preferences.addons[__package__].preferences
