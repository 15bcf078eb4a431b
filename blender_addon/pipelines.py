"""What the operators start: validate on the main thread (fast), talk to the backend on a worker thread, land the
result on the main thread as one undo step.

``start_generate`` / ``start_generate_text`` / ``start_search`` / ``start_apply_hit`` return in milliseconds (the
operator's ``execute`` measures < 100 ms in ``baton bench addon``): they check the inputs, read the target rig's rest
pose, and submit a :class:`jobs.Job`. Bad states raise ``ValueError`` / ``FileNotFoundError`` with a message for the
user before any job starts: missing audio, no armature, an armature in Edit Mode, an empty query or prompt.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass

import bpy

from . import apply as apply_layer
from . import jobs, mapping, results, rigs, server
from . import remote as remote_calls
from .properties import TARGET_SKELETONS


def report_finished(job: jobs.Job) -> None:
    """Job listener: a finished job's message goes to the panel's message line and the info log; when a thumbnails
    job ends, the thumbnails of a newer search that waited for it are fetched."""
    if job.kind == "thumbnails" and _pending_thumbnails:
        start_thumbnails(**_pending_thumbnails)
    if job.silent:
        return
    level = {"done": "INFO", "cancelled": "WARNING"}.get(job.state, "ERROR")
    scene = bpy.context.scene
    if scene is not None and hasattr(scene, "baton"):
        scene.baton.last_message, scene.baton.last_message_is_error = job.message, level == "ERROR"
    try:
        bpy.ops.baton.report(level=level, message=f"Baton: {job.message}")
    except RuntimeError:  # no context to report in (e.g. while Blender quits): the panel still shows it
        pass


# --- validation helpers (main thread) ------------------------------------------------------------------------------


def check_armature(obj: bpy.types.Object | None, purpose: str = "put the motion on") -> bpy.types.Object:
    """``obj`` if it is an armature that can take an action now.

    Raises:
        ValueError: no object / not an armature / in Edit Mode (with what to do about it).
    """
    if obj is None:
        raise ValueError(f"no armature selected: select the armature to {purpose}, or choose a new rig as Target")
    if obj.type != "ARMATURE":
        raise ValueError(f"'{obj.name}' is a {obj.type.lower()}, not an armature: select the armature to {purpose}")
    if obj.mode == "EDIT":
        raise ValueError(f"armature '{obj.name}' is in Edit Mode: switch to Object or Pose Mode first")
    return obj


def build_builtin_rig(context: bpy.types.Context, target: str) -> bpy.types.Object:
    """Build a new armature for ``target`` (``SMPL24``, ``KIT21``, ``COCO13``) at the 3D cursor and select it.

    Raises:
        ValueError: for another target name.
    """
    try:
        skeleton = TARGET_SKELETONS[target]
    except KeyError:
        raise ValueError(f"unknown rig {target!r}; expected one of {', '.join(TARGET_SKELETONS)}") from None
    if context.mode != "OBJECT" and context.active_object is not None:
        bpy.ops.object.mode_set(mode="OBJECT")
    obj = rigs.build_armature(rigs.builtin_rig(skeleton), name=skeleton.upper())
    obj.location = context.scene.cursor.location
    for other in context.selected_objects:
        other.select_set(False)
    obj.select_set(True)
    context.view_layer.objects.active = obj
    return obj


def resolve_target(context: bpy.types.Context, target: str) -> tuple[bpy.types.Object, bool]:
    """The armature a result goes onto and whether it was just built (a new rig is its own undo step, so undoing
    the result later keeps the rig and removes only the motion)."""
    if target == "ACTIVE":
        return check_armature(context.active_object), False
    obj = build_builtin_rig(context, target)
    results.push_undo(f"build {obj.name} rig")
    return obj, True


def resolve_audio(context: bpy.types.Context, audio_source: str, audio_path: str) -> str:
    """An absolute path to the music. Raises ``ValueError`` / ``FileNotFoundError`` with what to fix."""
    if audio_source == "STRIP":
        path = results.scene_sound_path(context.scene)
    else:
        if not audio_path.strip():
            raise ValueError("choose an audio file first (Generate from Music > Audio)")
        path = bpy.path.abspath(audio_path)
    path = os.path.abspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"audio file not found: {path}")
    return path


def custom_mapping(context: bpy.types.Context, obj: bpy.types.Object) -> dict[str, str] | None:
    """The editor's ``{bone: canonical joint}`` if it is switched on and belongs to ``obj``, else ``None``."""
    settings = context.scene.baton
    if not settings.use_mapping or settings.mapping_armature != obj.name:
        return None
    table = {item.bone: item.joint for item in settings.mapping if item.joint != "NONE"}
    mapping.validate_mapping(table, obj.data.bones.keys())
    return table


# --- the jobs ------------------------------------------------------------------------------------------------------


def start_generate(
    context: bpy.types.Context,
    *,
    audio_source: str,
    audio_path: str,
    model: str,
    seed: int,
    steps: int,
    guidance: float | None,
    target: str,
    root_motion: str,
    foot_lock: bool,
    smoothing: float,
    frame_start: int,
    controls: dict[str, float] | None = None,
) -> jobs.Job:
    """Generate a conductor's performance of the music onto the target armature (non-blocking).

    ``controls``: the procedural conductor's ``{"energy", "size", "legato"}`` (ranges:
    :data:`client.CONDUCTOR_CONTROLS`); sent for ``procedural`` only (the learned models have none).

    Raises:
        ValueError / FileNotFoundError: bad state or input, a control out of range (nothing was changed then).
    """
    controls = _check_controls(controls or {}) if model == "procedural" else {}
    audio = resolve_audio(context, audio_source, audio_path)
    _refuse_if_running("generate")
    obj, created = resolve_target(context, target)
    target_ref = TargetRef.of(obj)
    request = remote_calls.ConductRequest(
        audio_path=audio, model=model, seed=int(seed), steps=int(steps), guidance=guidance,
        rig=remote_calls.rig_of(obj), root=root_motion, foot_lock=bool(foot_lock), smoothing=float(smoothing),
        mapping=remote_calls.source_mapping(custom_mapping(context, obj), "coco13"), controls=controls,
    )  # fmt: skip
    url, token = server.connection(context)
    start_command = _auto_start_command(context)
    action_name = f"{os.path.splitext(os.path.basename(audio))[0][:24]} ({model} s{seed})"

    def work(job: jobs.Job):
        client = remote_calls.connect(job, start_command=start_command, url=url, token=token)
        return remote_calls.run_conduct(job, client, request)

    def apply(motion: remote_calls.RigMotion) -> str:
        return _land(job, [motion], target_ref, frame_start, [action_name], audio, created, "generate from music")

    job = jobs.Job(kind="generate", label=f"Conducting ({model})", work=work, apply=apply)
    return jobs.runner().submit(job)


def check_prompt(prompt: str) -> str:
    """The prompt without surrounding blanks. Raises ``ValueError`` when it is empty or over
    :data:`client.MAX_PROMPT_CHARS` characters."""
    from .client import MAX_PROMPT_CHARS

    text = prompt.strip()
    if not text:
        raise ValueError("type a prompt first (Generate from Text > Prompt), e.g. 'a person waves with the right hand'")
    if len(text) > MAX_PROMPT_CHARS:
        raise ValueError(f"the prompt has {len(text)} characters; at most {MAX_PROMPT_CHARS} are accepted")
    return text


def _check_controls(controls: dict[str, float]) -> dict[str, float]:
    """The conductor controls as floats. Raises ``ValueError`` for an unknown name or a value out of its range."""
    from .client import CONDUCTOR_CONTROLS

    checked = {}
    for name, value in controls.items():
        if name not in CONDUCTOR_CONTROLS:
            raise ValueError(f"unknown conductor control {name!r}; use {', '.join(CONDUCTOR_CONTROLS)}")
        low, high, _ = CONDUCTOR_CONTROLS[name]
        if not (math.isfinite(float(value)) and low <= float(value) <= high):
            raise ValueError(f"{name} must be in [{low:g}, {high:g}], got {value!r}")
        checked[name] = float(value)
    return checked


def _check_generation_options(seconds: float | None, guidance: float, samples: int) -> None:
    """Refuse, before any job starts, what text and voice generation share: a duration or guidance that is not a
    finite number (or a negative guidance), fewer than one variation.

    Raises:
        ValueError: naming the option.
    """
    if seconds is not None and not math.isfinite(seconds):
        raise ValueError(f"the duration must be a number of seconds, got {seconds!r}")
    if not math.isfinite(guidance) or guidance < 0:
        raise ValueError(f"guidance must be a finite number >= 0, got {guidance!r}")
    if int(samples) < 1:
        raise ValueError(f"ask for at least one variation, got {samples}")


def start_generate_text(
    context: bpy.types.Context,
    *,
    prompt: str,
    seconds: float | None,
    seed: int,
    samples: int,
    guidance: float,
    target: str,
    frame_start: int,
) -> jobs.Job:
    """Generate motion from a text prompt onto the target armature (non-blocking). ``samples`` variations land as
    Actions in one undo step; the first is on the rig, the Result panel switches between them.

    ``seconds=None`` lets the model choose the length; the backend checks the duration against the generator's
    limits (``MIN_SECONDS``..``MAX_SECONDS``, which the add-on does not know) and states them when it refuses.

    Raises:
        ValueError: empty or over-long prompt, a duration or guidance that is not a finite number (or a negative
            guidance), fewer than one variation, no usable armature (nothing was changed then).
    """
    text = check_prompt(prompt)
    _check_generation_options(seconds, guidance, samples)
    _refuse_if_running("generate_text")
    obj, created = resolve_target(context, target)
    target_ref = TargetRef.of(obj)
    request = remote_calls.GenerateTextRequest(
        prompt=text, seconds=None if seconds is None else float(seconds), seed=int(seed), samples=int(samples),
        guidance=float(guidance), rig=remote_calls.rig_of(obj),
    )  # fmt: skip
    url, token = server.connection(context)
    start_command = _auto_start_command(context)
    base_name = f"{_shorten(text, 40)} (s{int(seed)})"

    def work(job: jobs.Job):
        client = remote_calls.connect(job, start_command=start_command, url=url, token=token)
        return remote_calls.run_generate_text(job, client, request)

    def apply(motions: list[remote_calls.RigMotion]) -> str:
        names = [base_name] if len(motions) == 1 else [f"{base_name} v{i + 1}" for i in range(len(motions))]
        return _land(job, motions, target_ref, frame_start, names, None, created, "generate from text")

    label = f"Generating '{_shorten(text, 24)}'" + (f" x{int(samples)}" if int(samples) > 1 else "")
    job = jobs.Job(kind="generate_text", label=label, work=work, apply=apply)
    return jobs.runner().submit(job)


def resolve_recording(context: bpy.types.Context, voice_source: str, voice_path: str) -> str:
    """An absolute path to the spoken instruction: the chosen file, or the scene's sound strip
    (``voice_source="STRIP"``). Raises ``ValueError`` / ``FileNotFoundError`` with what to fix."""
    if voice_source == "STRIP":
        path = results.scene_sound_path(context.scene)
    else:
        if not voice_path.strip():
            raise ValueError("choose a recording first (Generate from Text > Voice > File)")
        path = bpy.path.abspath(voice_path)
    path = os.path.abspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"recording not found: {path}")
    return path


def heard_text(speech: dict) -> str:
    """What the panel shows of the backend's ``speech`` report: the transcript (cascaded) or the nearest caption
    (end-to-end)."""
    if speech.get("transcript"):
        return f"Heard: \u201c{speech['transcript'].strip()}\u201d"
    if speech.get("nearest_caption"):
        return f"Understood as: \u201c{speech['nearest_caption']}\u201d"
    return ""


def start_generate_voice(
    context: bpy.types.Context,
    *,
    voice_source: str,
    voice_path: str,
    path: str,
    seconds: float | None,
    record_seconds: float = 4.0,
    seed: int,
    samples: int,
    guidance: float,
    target: str,
    frame_start: int,
) -> jobs.Job:
    """Generate motion from a spoken instruction onto the target armature (non-blocking): the recording (a file or
    the scene's sound strip) is uploaded to the backend (``voice_source="MIC"``: the backend records
    ``record_seconds`` from its default microphone instead; no input device fails the job with that message),
    understood there by ``path`` (``end2end`` | ``cascaded``, docs/voice.md) and generated like Generate from Text;
    the variations land as Actions in one undo step, and
    ``scene.baton.voice_heard`` shows the transcript or the nearest caption. Audio the backend refuses (silent, too
    short / long, unreadable) or does not understand fails the job with its reason; nothing lands then.

    Raises:
        ValueError / FileNotFoundError: no recording, an unknown path, a bad duration or guidance, fewer than one
            variation, no usable armature (nothing was changed then).
    """
    if path not in ("end2end", "cascaded"):
        raise ValueError(f"the speech path must be end2end or cascaded, got {path!r}")
    audio = None if voice_source == "MIC" else resolve_recording(context, voice_source, voice_path)
    _check_generation_options(seconds, guidance, samples)
    _refuse_if_running("generate_voice")
    obj, created = resolve_target(context, target)
    target_ref = TargetRef.of(obj)
    request = remote_calls.GenerateVoiceRequest(
        audio_path=audio, path=path, seconds=None if seconds is None else float(seconds), seed=int(seed),
        samples=int(samples), guidance=float(guidance), rig=remote_calls.rig_of(obj),
        record_seconds=float(record_seconds),
    )  # fmt: skip
    url, token = server.connection(context)
    start_command = _auto_start_command(context)
    stem = "microphone" if audio is None else os.path.splitext(os.path.basename(audio))[0]

    def work(job: jobs.Job):
        client = remote_calls.connect(job, start_command=start_command, url=url, token=token)
        return remote_calls.run_generate_voice(job, client, request)

    def apply(result: tuple[list[remote_calls.RigMotion], dict]) -> str:
        motions, speech = result
        heard = heard_text(speech)
        base = f"{_shorten(speech.get('transcript') or speech.get('nearest_caption') or stem, 40)} (s{int(seed)})"
        names = [base] if len(motions) == 1 else [f"{base} v{i + 1}" for i in range(len(motions))]
        settings = bpy.context.scene.baton
        before = settings.voice_heard
        settings.voice_heard = heard  # part of the result's undo step
        try:
            message = _land(job, motions, target_ref, frame_start, names, None, created, "generate from voice")
        except BaseException:
            settings.voice_heard = before
            raise
        return f"{heard} {message}" if heard else message

    label = f"Voice ({path})" + (f" x{int(samples)}" if int(samples) > 1 else "")
    job = jobs.Job(kind="generate_voice", label=label, work=work, apply=apply)
    return jobs.runner().submit(job)


def resolve_video(context: bpy.types.Context, video_source: str, video_path: str) -> str:
    """An absolute path to the video: the chosen file, or the scene's movie strip (``video_source="STRIP"``).

    Raises:
        ValueError / FileNotFoundError: no file chosen, no movie strip, or the file does not exist.
    """
    if video_source == "STRIP":
        path = results.scene_movie_path(context.scene)
    else:
        if not video_path.strip():
            raise ValueError("choose a video file first (Library Search > Video)")
        path = bpy.path.abspath(video_path)
    path = os.path.abspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"video file not found: {path}")
    return path


def start_search(context: bpy.types.Context, *, mode: str, query: str, k: int, video_source: str = "FILE",
                 video_path: str = "") -> jobs.Job:  # fmt: skip
    """Search the library by text (``mode="TEXT"``), by the active armature's action (``"ACTION"``) or by a video
    (``"VIDEO"``: a file or the scene's movie strip, which the backend reads from disk, so it must lie under one of
    the backend's ``--root`` folders), non-blocking; results fill ``scene.baton.search_results``."""
    _refuse_if_running("search")
    if mode == "TEXT":
        if not query.strip():
            raise ValueError("type what you are looking for first (e.g. 'a person waves their right hand')")
        request = remote_calls.SearchRequest(k=int(k), text=query.strip())
    elif mode == "VIDEO":
        request = remote_calls.SearchRequest(k=int(k), video_path=resolve_video(context, video_source, video_path))
    else:
        obj = check_armature(context.active_object, purpose="search by its motion")
        request = remote_calls.SearchRequest(k=int(k), motion=remote_calls.evaluated_motion(context, obj))
    url, token = server.connection(context)
    start_command = _auto_start_command(context)
    scene_name = context.scene.name

    def work(job: jobs.Job):
        client = remote_calls.connect(job, start_command=start_command, url=url, token=token)
        return remote_calls.run_search(job, client, request)

    def apply(hits: list[dict]) -> str:
        scene = bpy.data.scenes.get(scene_name) or bpy.context.scene
        settings = scene.baton
        settings.search_results.clear()
        for hit in hits:
            item = settings.search_results.add()
            item.clip_id, item.name = str(hit["clip_id"]), str(hit.get("name", hit["clip_id"]))
            item.score, item.duration_s = float(hit.get("score", 0.0)), float(hit.get("duration_s", 0.0))
            item.license, item.skeleton = str(hit.get("license", "")), str(hit.get("skeleton", ""))
            item.caption = str(hit.get("caption", ""))
        settings.search_index = 0
        if hits and settings.search_thumbnails:  # the results are in; thumbnails follow in their own job
            start_thumbnails([int(hit["clip_id"]) for hit in hits], url=url, token=token)
        return f"{len(hits)} motions found" if hits else "no motions found"

    job = jobs.Job(kind="search", label="Searching", work=work, apply=apply)
    return jobs.runner().submit(job)


_pending_thumbnails: dict = {}


def start_thumbnails(clip_ids: list[int], *, url: str, token: str) -> jobs.Job | None:
    """Fetch the thumbnails of ``clip_ids`` (the backend renders missing ones: ~20 s for Blender to start, then
    about a second per clip; cached in the library afterwards) and load them as preview icons (non-blocking).

    A thumbnails job still running for an older search is cancelled and this request waits until it has stopped
    (:func:`report_finished` starts it then); returns ``None`` in that case."""
    from . import thumbnails

    previous = jobs.runner().latest("thumbnails")
    if previous is not None and previous.active:
        previous.cancel()
        _pending_thumbnails.update(clip_ids=list(clip_ids), url=url, token=token)
        return None
    _pending_thumbnails.clear()

    def work(job: jobs.Job):
        client = remote_calls.connect(job, start_command=None, url=url, token=token)
        return remote_calls.run_thumbnails(job, client, clip_ids)

    def apply(items: list[dict]) -> str:
        thumbnails.store(items)
        rendered = sum(item["rendered"] for item in items)
        strips = len(items) - rendered
        return f"{len(items)} thumbnails" + (f" ({strips} pose strips: no Blender on the backend)" if strips else "")

    job = jobs.Job(kind="thumbnails", label="Drawing thumbnails", work=work, apply=apply, silent=True)
    return jobs.runner().submit(job)


def start_apply_hit(
    context: bpy.types.Context,
    *,
    clip_id: str,
    name: str,
    source_skeleton: str,
    target: str,
    root_motion: str,
    foot_lock: bool,
    smoothing: float,
    frame_start: int,
    preview: bool,
) -> jobs.Job:
    """Retarget a library clip onto the target armature (non-blocking). ``preview`` leaves it pending (Accept /
    Reject) and starts playback; otherwise it is accepted at once. The bone-mapping editor's table is sent when the
    clip is on a built-in skeleton (``source_skeleton``); for other skeletons the backend maps bones by name."""
    _refuse_if_running("apply_hit")
    obj, created = resolve_target(context, target)
    target_ref = TargetRef.of(obj)
    table = custom_mapping(context, obj)
    if table is not None and source_skeleton not in mapping.SOURCE_SKELETONS:
        table = None  # the clip's joint names are only known to the backend: it maps by name itself
    request = remote_calls.RetargetRequest(
        clip_id=clip_id, rig=remote_calls.rig_of(obj), root=root_motion, foot_lock=bool(foot_lock),
        smoothing=float(smoothing), mapping=remote_calls.source_mapping(table, source_skeleton),
    )  # fmt: skip
    url, token = server.connection(context)
    start_command = _auto_start_command(context)

    def work(job: jobs.Job):
        client = remote_calls.connect(job, start_command=start_command, url=url, token=token)
        return remote_calls.run_retarget(job, client, request)

    def apply(motion: remote_calls.RigMotion) -> str:
        message = _land(job, [motion], target_ref, frame_start, [f"Baton {name[:40]}"], None, created,
                        "apply library clip")
        if not preview:
            message = results.accept(bpy.context.scene)
        else:
            _play()
        return message

    job = jobs.Job(kind="apply_hit", label=f"Retargeting {name[:24]}", work=work, apply=apply)
    return jobs.runner().submit(job)


# --- shared pieces -------------------------------------------------------------------------------------------------


def _shorten(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, an ellipsis marking the cut."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _refuse_if_running(kind: str) -> None:
    job = jobs.runner().latest(kind)
    if job is not None and job.active:
        raise RuntimeError(f"a {kind.replace('_', ' ')} job is still running: wait for it or press Cancel")


def _auto_start_command(context) -> tuple[list[str], dict[str, str]] | None:
    """The local backend's start command when Start Automatically is on (and a command can be formed)."""
    from . import preferences

    if not preferences.get(context).auto_start:
        return None
    try:
        return server.start_command(context)
    except ValueError:
        return None


@dataclass(frozen=True)
class TargetRef:
    """The target armature by name and session id: Python references to Blender data do not survive undo or
    loading a file while a job runs, and another file may hold an object of the same name."""

    name: str
    session_uid: int | None

    @classmethod
    def of(cls, obj: bpy.types.Object) -> TargetRef:
        return cls(obj.name, getattr(obj, "session_uid", None))

    def resolve(self) -> bpy.types.Object:
        """The object now. Raises ``ValueError`` when it is gone (deleted, undone, another file loaded)."""
        obj = bpy.data.objects.get(self.name)
        if obj is None or (self.session_uid is not None and getattr(obj, "session_uid", None) != self.session_uid):
            raise ValueError(f"the armature '{self.name}' is gone (deleted, undone or another file loaded) while "
                             "the job ran; nothing was changed")  # fmt: skip
        return obj


def _land(job, motions: list, target: TargetRef, frame_start, names: list[str], audio, created, undo_message) -> str:
    """Main thread: write one Action per motion with :mod:`apply` and finish with :func:`results.land_action`.

    Several motions are variations of one result: each becomes an Action named by ``names``, the first stays on the
    rig, and all of them land in the same single undo step.
    """
    obj = target.resolve()
    check_armature(obj)
    previous = results.current_action(obj)
    started = time.perf_counter()
    # With "Set Scene FPS and Range" the scene runs at the motion's fps (one key per frame); without it the keys are
    # spaced for the scene's own fps so the motion keeps its timing (and stays in sync with the music).
    keep_scene_fps = not bpy.context.scene.baton.set_scene_range
    actions = []
    try:
        for each, name in zip(motions, names, strict=True):
            actions.append(apply_layer.apply_motion(
                obj, each.bone_names, each.rotations, each.root_translation, each.fps,
                frame_start=frame_start, action_name=name, match_scene_fps=keep_scene_fps,
            ))  # fmt: skip
    except BaseException:  # a bad variation: nothing of this result stays
        results.assign_action(obj, previous)
        for action in actions:
            bpy.data.actions.remove(action)
        raise
    if len(actions) > 1:
        results.assign_action(obj, actions[0])
    job.timings["keyframe_write_s"] = time.perf_counter() - started
    first = motions[0]
    return results.land_action(
        bpy.context, obj, actions[0], previous, frame_start=frame_start, num_frames=first.num_frames, fps=first.fps,
        audio_path=audio, created_rig=created, undo_message=undo_message, variations=actions,
    )  # fmt: skip


def _play() -> None:
    screen = bpy.context.screen
    if screen is not None and not screen.is_animation_playing:
        try:
            bpy.ops.screen.animation_play()
        except RuntimeError:  # no window (background): nothing to play in
            pass
