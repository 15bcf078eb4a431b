"""Operators of the Baton panels. Thin: ``execute`` turns properties into keyword arguments and calls a worker in
:mod:`pipelines`, :mod:`results` or :mod:`server`; errors become ``self.report`` messages (info log) and the panel's
message line, never tracebacks."""

from __future__ import annotations

import bpy
from bpy.props import BoolProperty, EnumProperty, IntProperty, StringProperty

from . import jobs, pipelines, results, server


def _fail(operator: bpy.types.Operator, context: bpy.types.Context, exc: Exception) -> set[str]:
    message = str(exc) or type(exc).__name__
    settings = getattr(context.scene, "baton", None)
    if settings is not None:
        settings.last_message, settings.last_message_is_error = message, True
    operator.report({"ERROR"}, message)
    return {"CANCELLED"}


def _ok(operator: bpy.types.Operator, context: bpy.types.Context, message: str) -> set[str]:
    settings = getattr(context.scene, "baton", None)
    if settings is not None:
        settings.last_message, settings.last_message_is_error = message, False
    operator.report({"INFO"}, message)
    return {"FINISHED"}


class BATON_OT_generate(bpy.types.Operator):
    """Generate a conductor's performance of the music on the target armature (runs in the background)"""

    bl_idname = "baton.generate"
    bl_label = "Generate"
    bl_options = {"REGISTER"}  # the result lands later as its own undo step (results.land_action)

    def execute(self, context):
        settings = context.scene.baton
        try:
            job = pipelines.start_generate(
                context,
                audio_source=settings.audio_source,
                audio_path=settings.audio_path,
                model=settings.model,
                seed=settings.seed,
                steps=settings.steps,
                guidance=settings.guidance if settings.use_guidance else None,
                target=settings.target,
                root_motion=settings.root_motion,
                foot_lock=settings.foot_lock,
                smoothing=settings.smoothing,
                frame_start=settings.frame_start,
                controls={"energy": settings.energy, "size": settings.size, "legato": settings.legato},
            )
        except (ValueError, FileNotFoundError, RuntimeError) as exc:
            return _fail(self, context, exc)
        return _ok(self, context, f"{job.label}: started (see the progress bar; Cancel stops it)")


def _generation_options(settings) -> dict:
    """The options text and voice generation share (the Generate from Text panel's fields)."""
    return {
        "seconds": None if settings.text_auto_duration else settings.text_seconds,
        "seed": settings.text_seed,
        "samples": settings.text_samples,
        "guidance": settings.text_guidance,
        "target": settings.target,
        "frame_start": settings.frame_start,
    }


class BATON_OT_generate_text(bpy.types.Operator):
    """Generate motion from the text prompt on the target armature (runs in the background)"""

    bl_idname = "baton.generate_text"
    bl_label = "Generate"
    bl_options = {"REGISTER"}  # the result lands later as its own undo step (results.land_action)

    def execute(self, context):
        settings = context.scene.baton
        try:
            job = pipelines.start_generate_text(
                context,
                prompt=settings.text_prompt,
                **_generation_options(settings),
            )
        except (ValueError, FileNotFoundError, RuntimeError) as exc:
            return _fail(self, context, exc)
        return _ok(self, context, f"{job.label}: started (see the progress bar; Cancel stops it)")


class BATON_OT_generate_voice(bpy.types.Operator):
    """Generate motion from a spoken instruction (a recording file or the scene's sound strip) on the target
    armature (runs in the background)"""

    bl_idname = "baton.generate_voice"
    bl_label = "Generate from Voice"
    bl_options = {"REGISTER"}  # the result lands later as its own undo step (results.land_action)

    def execute(self, context):
        settings = context.scene.baton
        try:
            job = pipelines.start_generate_voice(
                context,
                voice_source=settings.voice_source,
                voice_path=settings.voice_path,
                path=settings.voice_mode,
                record_seconds=settings.voice_record_seconds,
                **_generation_options(settings),
            )
        except (ValueError, FileNotFoundError, RuntimeError) as exc:
            return _fail(self, context, exc)
        return _ok(self, context, f"{job.label}: started (see the progress bar; Cancel stops it)")


class BATON_OT_search(bpy.types.Operator):
    """Search the motion library by text, by the selected armature's action or by a video (in the background)"""

    bl_idname = "baton.search"
    bl_label = "Search"
    bl_options = {"REGISTER"}

    def execute(self, context):
        settings = context.scene.baton
        try:
            job = pipelines.start_search(
                context,
                mode=settings.search_mode,
                query=settings.search_query,
                video_source=settings.video_source,
                video_path=settings.video_path,
                k=settings.search_k,
            )
        except (ValueError, FileNotFoundError, RuntimeError) as exc:
            return _fail(self, context, exc)
        return _ok(self, context, f"{job.label}: started")


class BATON_OT_apply_hit(bpy.types.Operator):
    """Retarget the selected search result onto the target armature (Preview waits for Accept / Reject)"""

    bl_idname = "baton.apply_hit"
    bl_label = "Apply Result"
    bl_options = {"REGISTER"}  # the result lands later as its own undo step (results.land_action)

    preview: BoolProperty(name="Preview", default=False, options={"SKIP_SAVE"})

    def execute(self, context):
        settings = context.scene.baton
        if not 0 <= settings.search_index < len(settings.search_results):
            return _fail(self, context, ValueError("select a search result first"))
        hit = settings.search_results[settings.search_index]
        try:
            job = pipelines.start_apply_hit(
                context,
                clip_id=hit.clip_id,
                name=hit.name,
                source_skeleton=hit.skeleton,
                target=settings.target,
                root_motion=settings.root_motion,
                foot_lock=settings.foot_lock,
                smoothing=settings.smoothing,
                frame_start=settings.frame_start,
                preview=self.preview,
            )
        except (ValueError, FileNotFoundError, RuntimeError) as exc:
            return _fail(self, context, exc)
        return _ok(self, context, f"{job.label}: started")


class BATON_OT_cancel(bpy.types.Operator):
    """Stop the running Baton job (the scene is left as it was)"""

    bl_idname = "baton.cancel"
    bl_label = "Cancel"

    kind: StringProperty(default="", options={"SKIP_SAVE"})

    def execute(self, context):
        job = jobs.runner().latest(self.kind) if self.kind else None
        targets = [job] if job is not None else [j for j in jobs.runner().jobs if j.active]
        for each in targets:
            each.cancel()
        return _ok(self, context, "cancelling ..." if targets else "nothing to cancel")


class BATON_OT_result(bpy.types.Operator):
    """Decide about the pending result: keep it, put the previous action back, or move it to the NLA"""

    bl_idname = "baton.result"
    bl_label = "Result"
    bl_options = {"REGISTER"}

    action: EnumProperty(
        items=(
            ("ACCEPT", "Accept", "Keep the new action"),
            ("REJECT", "Reject", "Restore the previous action and delete the new one"),
            ("NLA", "Push to NLA", "Move the new action onto an NLA track and restore the previous action"),
        )
    )

    def execute(self, context):
        worker = {"ACCEPT": results.accept, "REJECT": results.reject, "NLA": results.push_to_nla}[self.action]
        try:
            return _ok(self, context, worker(context.scene))
        except ValueError as exc:
            return _fail(self, context, exc)


class BATON_OT_variation(bpy.types.Operator):
    """Put this variation of the pending result on the rig"""

    bl_idname = "baton.variation"
    bl_label = "Variation"
    bl_options = {"REGISTER"}

    index: IntProperty(name="Variation", default=0, min=0, options={"SKIP_SAVE"})

    def execute(self, context):
        try:
            return _ok(self, context, results.choose_variation(context.scene, self.index))
        except ValueError as exc:
            return _fail(self, context, exc)


class BATON_OT_backend(bpy.types.Operator):
    """Start, stop or check the Baton backend"""

    bl_idname = "baton.backend"
    bl_label = "Backend"

    action: EnumProperty(
        items=(
            ("CHECK", "Check", "Ask the backend for its status and capabilities"),
            ("START", "Start", "Start a local backend (baton serve) with the command from the preferences"),
            ("STOP", "Stop", "Stop the local backend started from Blender"),
        )
    )

    def execute(self, context):
        try:
            if self.action == "START":
                message = server.start_local(context)
            elif self.action == "STOP":
                message = server.stop_local()
            else:
                server.check(context)
                message = "checking the backend ..."
        except (ValueError, RuntimeError) as exc:
            return _fail(self, context, exc)
        return _ok(self, context, message)


class BATON_OT_report(bpy.types.Operator):
    """Internal: put a finished job's message into the info log (timers cannot report themselves)"""

    bl_idname = "baton.report"
    bl_label = "Baton Report"
    bl_options = {"INTERNAL"}

    level: EnumProperty(items=(("INFO", "Info", ""), ("WARNING", "Warning", ""), ("ERROR", "Error", "")))
    message: StringProperty()

    def execute(self, context):
        self.report({self.level}, self.message)
        return {"FINISHED"}


class BATON_OT_dismiss(bpy.types.Operator):
    """Clear the message line of the Baton panels"""

    bl_idname = "baton.dismiss"
    bl_label = "Dismiss"
    bl_options = {"INTERNAL"}

    def execute(self, context):
        context.scene.baton.last_message = ""
        return {"FINISHED"}


CLASSES = (
    BATON_OT_generate,
    BATON_OT_generate_text,
    BATON_OT_generate_voice,
    BATON_OT_search,
    BATON_OT_apply_hit,
    BATON_OT_cancel,
    BATON_OT_result,
    BATON_OT_variation,
    BATON_OT_backend,
    BATON_OT_report,
    BATON_OT_dismiss,
)
