"""The Baton tab of the 3D View sidebar: Backend, Generate from Music, Generate from Text, Library Search, Result,
Bone Mapping.

Panels only read state (scene properties, the job runner, the cached backend status); they never do I/O, so drawing
stays instant whatever the backend is doing.
"""

from __future__ import annotations

import textwrap

import bpy

from . import jobs, results, server, thumbnails

CATEGORY = "Baton"
STATE_ICONS = {
    "online": "SEQUENCE_COLOR_04",  # green
    "offline": "SEQUENCE_COLOR_01",  # red
    "starting": "SEQUENCE_COLOR_03",  # yellow
    "checking": "SEQUENCE_COLOR_03",
    "unknown": "SEQUENCE_COLOR_09",  # grey
}


def wrapped(layout, text: str, icon: str = "NONE", width: int = 48) -> None:
    """Labels for a long message, ``width`` characters per line (the first line carries the icon)."""
    for i, line in enumerate(textwrap.wrap(text, width) or [""]):
        layout.label(text=line, icon=icon if i == 0 else "BLANK1")


def draw_model_note(layout, name: str) -> None:
    """An error note when the backend reports model ``name`` (``t2m``, ``conductor:diffusion``) unavailable."""
    model_info = (server.status().capabilities.get("models") or {}).get(name)
    if isinstance(model_info, dict) and not model_info.get("available", True):
        wrapped(layout.column(align=True), f"Not available on this backend: {model_info.get('detail', '')}",
                icon="ERROR")


def draw_start(layout, kind: str, operator: str, icon: str) -> None:
    """The big start button of a job ``kind`` (disabled while one runs), then its progress (:func:`draw_job`)."""
    job = jobs.runner().latest(kind)
    row = layout.row()
    row.scale_y = 1.4
    row.enabled = not (job is not None and job.active)
    row.operator(operator, icon=icon)
    draw_job(layout, kind)


def draw_job(layout, kind: str) -> None:
    """Progress bar + Cancel while a job of ``kind`` runs; its error (with a Start button when the backend is
    down) after it failed."""
    job = jobs.runner().latest(kind)
    if job is None:
        return
    if job.active:
        row = layout.row(align=True)
        text = f"{job.label}: {job.stage} {job.fraction * 100:.0f}%"
        if hasattr(row, "progress"):
            row.progress(factor=job.fraction, type="BAR", text=text)
        else:  # Blender < 4.0 has no progress widget
            row.label(text=text, icon="TIME")
        row.operator("baton.cancel", text="", icon="CANCEL").kind = kind
    elif job.state == "failed":
        box = layout.box()
        wrapped(box, job.message, icon="ERROR")
        if "No Baton backend is answering" in job.message or "Lost contact" in job.message:
            box.operator("baton.backend", text="Start Backend", icon="PLAY").action = "START"
    elif job.state == "cancelled":
        layout.label(text=f"{job.label}: cancelled", icon="CANCEL")


class BATON_PT_backend(bpy.types.Panel):
    bl_label = "Backend"
    bl_idname = "BATON_PT_backend"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = CATEGORY

    def draw(self, context):
        layout = self.layout
        status = server.status()
        row = layout.row(align=True)
        row.label(text=status.state.capitalize(), icon=STATE_ICONS.get(status.state, "QUESTION"))
        row.operator("baton.backend", text="", icon="FILE_REFRESH").action = "CHECK"
        if server.local_process() is not None:
            row.operator("baton.backend", text="Stop", icon="PAUSE").action = "STOP"
        elif status.state != "online":
            row.operator("baton.backend", text="Start", icon="PLAY").action = "START"
        wrapped(layout.column(align=True), status.detail, width=52)
        capabilities = status.capabilities or {}
        models = capabilities.get("models") if isinstance(capabilities, dict) else None
        if isinstance(models, dict) and models:
            column = layout.column(align=True)
            column.label(text="Models:")
            for name, info in models.items():
                available = isinstance(info, dict) and bool(info.get("available"))
                column.label(text=name.split(":")[-1], icon="CHECKMARK" if available else "X")
            if capabilities.get("device"):
                layout.label(text=f"Device: {capabilities['device']}, runtime: {capabilities.get('runtime', '?')}")


class BATON_PT_generate(bpy.types.Panel):
    bl_label = "Generate from Music"
    bl_idname = "BATON_PT_generate"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = CATEGORY

    def draw(self, context):
        layout = self.layout
        settings = context.scene.baton
        layout.use_property_split = True
        layout.use_property_decorate = False
        layout.prop(settings, "audio_source", expand=True)
        if settings.audio_source == "FILE":
            layout.prop(settings, "audio_path", text="File")
        column = layout.column(align=True)
        column.prop(settings, "model")
        draw_model_note(layout, f"conductor:{settings.model}")
        column = layout.column(align=True)
        column.prop(settings, "seed")
        if settings.model == "procedural":  # the controls shape the procedural conductor only
            for name in ("energy", "size", "legato"):
                column.prop(settings, name, slider=True)
        if settings.model == "diffusion":
            column.prop(settings, "steps")
            row = column.row(align=True)
            row.prop(settings, "use_guidance", text="Guidance")
            sub = row.row(align=True)
            sub.active = settings.use_guidance
            sub.prop(settings, "guidance", text="")
        layout.prop(settings, "target")
        column = layout.column(align=True)
        column.prop(settings, "root_motion")
        column.prop(settings, "foot_lock")
        column.prop(settings, "frame_start")
        column.prop(settings, "add_sound_strip")
        column.prop(settings, "set_scene_range")
        layout.use_property_split = False
        draw_start(layout, "generate", "baton.generate", "PLAY_SOUND")


class BATON_PT_generate_text(bpy.types.Panel):
    bl_label = "Generate from Text"
    bl_idname = "BATON_PT_generate_text"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = CATEGORY

    def draw(self, context):
        layout = self.layout
        settings = context.scene.baton
        layout.prop(settings, "text_prompt", text="", icon="TEXT")
        draw_model_note(layout, "t2m")
        layout.use_property_split = True
        layout.use_property_decorate = False
        column = layout.column(align=True)
        sub = column.column(align=True)
        sub.active = not settings.text_auto_duration
        sub.prop(settings, "text_seconds")
        column.prop(settings, "text_auto_duration")
        column = layout.column(align=True)
        column.prop(settings, "text_seed")
        column.prop(settings, "text_samples")
        column.prop(settings, "text_guidance")
        layout.prop(settings, "target")
        layout.prop(settings, "frame_start")
        layout.use_property_split = False
        draw_start(layout, "generate_text", "baton.generate_text", "OUTLINER_OB_ARMATURE")


class BATON_PT_generate_voice(bpy.types.Panel):
    """Generate from Text > Voice: a spoken instruction instead of the prompt; the duration, seed, variations,
    guidance, target and start frame are the text options above."""

    bl_label = "Voice"
    bl_idname = "BATON_PT_generate_voice"
    bl_parent_id = "BATON_PT_generate_text"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = CATEGORY

    def draw(self, context):
        layout = self.layout
        settings = context.scene.baton
        layout.prop(settings, "voice_source", expand=True)
        if settings.voice_source == "FILE":
            layout.prop(settings, "voice_path", text="File")
        elif settings.voice_source == "MIC":
            layout.prop(settings, "voice_record_seconds")
            layout.label(text="Recorded by the backend's machine (level meter in the progress bar)", icon="INFO")
        layout.prop(settings, "voice_mode", expand=True)
        draw_model_note(layout, "speech")
        draw_start(layout, "generate_voice", "baton.generate_voice", "SPEAKER")
        if settings.voice_heard and settings.pending_action is not None:
            wrapped(layout.box(), settings.voice_heard, icon="OUTLINER_DATA_SPEAKER")


class BATON_UL_hits(bpy.types.UIList):
    """Search results: score, name, duration, license."""

    def draw_item(self, context, layout, data, item, icon, active_data, active_propname, index):
        split = layout.split(factor=0.14)
        split.label(text=f"{item.score:.2f}")
        split = split.split(factor=0.62)
        thumbnail = thumbnails.icon_id(item.clip_id)
        if thumbnail:
            split.label(text=item.name, icon_value=thumbnail)
        else:
            split.label(text=item.name, icon="ACTION")
        split = split.split(factor=0.4)
        split.label(text=f"{item.duration_s:.1f} s")
        split.label(text=item.license)


class BATON_PT_search(bpy.types.Panel):
    bl_label = "Library Search"
    bl_idname = "BATON_PT_search"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = CATEGORY

    def draw(self, context):
        layout = self.layout
        settings = context.scene.baton
        layout.prop(settings, "search_mode", expand=True)
        if settings.search_mode == "TEXT":
            layout.prop(settings, "search_query", text="", icon="VIEWZOOM")
        elif settings.search_mode == "VIDEO":
            layout.prop(settings, "video_source", expand=True)
            if settings.video_source == "FILE":
                layout.prop(settings, "video_path", text="")
        else:
            obj = context.active_object
            label = obj.name if obj is not None and obj.type == "ARMATURE" else "select an armature"
            layout.label(text=f"Motion of: {label}", icon="ARMATURE_DATA")
        row = layout.row(align=True)
        row.prop(settings, "search_k")
        row.prop(settings, "search_thumbnails", text="", icon="IMAGE_DATA")
        row.operator("baton.search", icon="VIEWZOOM")
        draw_job(layout, "search")
        layout.template_list("BATON_UL_hits", "", settings, "search_results", settings, "search_index", rows=4)
        draw_job(layout, "thumbnails")
        if 0 <= settings.search_index < len(settings.search_results):
            hit = settings.search_results[settings.search_index]
            thumbnail = thumbnails.icon_id(hit.clip_id) if settings.search_thumbnails else 0
            if thumbnail:
                layout.template_icon(icon_value=thumbnail, scale=8.0)
            if hit.caption:
                wrapped(layout.column(align=True), hit.caption, icon="INFO")
            row = layout.row(align=True)
            row.operator("baton.apply_hit", text="Preview", icon="HIDE_OFF").preview = True
            row.operator("baton.apply_hit", text="Apply", icon="CHECKMARK").preview = False
        draw_job(layout, "apply_hit")


class BATON_PT_result(bpy.types.Panel):
    bl_label = "Result"
    bl_idname = "BATON_PT_result"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = CATEGORY

    def draw(self, context):
        layout = self.layout
        settings = context.scene.baton
        if settings.last_message:
            row = layout.row()
            wrapped(row.column(align=True), settings.last_message, icon="ERROR" if settings.last_message_is_error
                    else "INFO")
            row.operator("baton.dismiss", text="", icon="X", emboss=False)
        if results.has_pending(context.scene):
            if not settings.last_message:
                wrapped(layout.column(align=True), f"{settings.pending_action.name} on {settings.pending_object.name}",
                        icon="ACTION")
            if len(settings.pending_variations) > 1:
                row = layout.row(align=True)
                row.label(text="Variation:")
                for i, item in enumerate(settings.pending_variations):
                    chosen = item.action is not None and item.action == settings.pending_action
                    row.operator("baton.variation", text=str(i + 1), depress=chosen).index = i
            row = layout.row(align=True)
            row.operator("baton.result", text="Accept", icon="CHECKMARK").action = "ACCEPT"
            row.operator("baton.result", text="Reject", icon="LOOP_BACK").action = "REJECT"
            row.operator("baton.result", text="Push to NLA", icon="NLA_PUSHDOWN").action = "NLA"
        elif not settings.last_message:
            layout.label(text="No pending result")


class BATON_UL_mapping(bpy.types.UIList):
    """Bone-mapping rows: bone name, canonical joint (editable)."""

    def draw_item(self, context, layout, data, item, icon, active_data, active_propname, index):
        split = layout.split(factor=0.55)
        split.label(text=item.bone, icon="BONE_DATA")
        split.prop(item, "joint", text="")


class BATON_PT_rigs(bpy.types.Panel):
    bl_label = "Rigs and Bone Mapping"
    bl_idname = "BATON_PT_rigs"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = CATEGORY
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        layout = self.layout
        settings = context.scene.baton
        row = layout.row(align=True)
        row.label(text="New rig:")
        for value, text in (("SMPL24", "SMPL-24"), ("KIT21", "KIT-21"), ("COCO13", "COCO-13")):
            row.operator("baton.build_rig", text=text).skeleton = value
        row = layout.row(align=True)
        row.operator("baton.mapping_fill", icon="AUTO")
        row.operator("baton.mapping_load", text="", icon="FILEBROWSER")
        row.operator("baton.mapping_save", text="", icon="FILE_TICK")
        if len(settings.mapping):
            layout.label(text=f"Mapping of {settings.mapping_armature}")
            layout.template_list("BATON_UL_mapping", "", settings, "mapping", settings, "mapping_index", rows=6)
            layout.prop(settings, "use_mapping")


CLASSES = (
    BATON_UL_hits,
    BATON_UL_mapping,
    BATON_PT_backend,
    BATON_PT_generate,
    BATON_PT_generate_text,
    BATON_PT_generate_voice,
    BATON_PT_search,
    BATON_PT_result,
    BATON_PT_rigs,
)
