"""Scene settings of the Baton panels: one PropertyGroup behind ``Scene.baton`` (registered in ``__init__``)."""

from __future__ import annotations

import bpy
from bpy.props import (
    BoolProperty,
    CollectionProperty,
    EnumProperty,
    FloatProperty,
    IntProperty,
    PointerProperty,
    StringProperty,
)

from . import mapping as mapping_tables
from .client import TEXT_GUIDANCE

MODEL_ITEMS = (
    ("procedural", "Procedural", "Rule-based conductor timed to beats and loudness (always available)"),
    ("diffusion", "Diffusion", "Diffusion-Conductor: x0-predicting DDIM transformer"),
    ("m2sgan", "M2S-GAN", "VirtualConductor generator (needs the official checkpoint on the backend)"),
)
TARGET_ITEMS = (
    ("ACTIVE", "Active Armature", "Put the result on the active armature"),
    ("SMPL24", "New SMPL-24 Rig", "Build a new SMPL-24 armature and put the result on it"),
    ("KIT21", "New KIT-21 Rig", "Build a new KIT-ML (MMM) armature and put the result on it"),
    ("COCO13", "New COCO-13 Rig", "Build a new 13-keypoint conductor armature and put the result on it"),
)
#: Target enum value -> registry skeleton name.
TARGET_SKELETONS = {"SMPL24": "smpl24", "KIT21": "kit21", "COCO13": "coco13"}
ROOT_ITEMS = (
    ("full", "Full", "Keep the source's root translation"),
    ("inplace", "In Place", "Remove horizontal root motion"),
    ("height", "Keep Height", "Only keep the hips' height"),
)
CANONICAL_ITEMS = (("NONE", "-", "Not set: the backend maps this bone by name, or leaves it at rest"),) + tuple(
    (name, name, f"canonical joint {name}") for name in mapping_tables.CANONICAL_JOINTS
)


class BATON_MappingItem(bpy.types.PropertyGroup):
    """One row of the bone-mapping editor: a bone of the target armature and the canonical joint driving it."""

    bone: StringProperty(name="Bone", description="Bone of the target armature")
    joint: EnumProperty(name="Joint", description="Canonical (SMPL-24) joint driving this bone", items=CANONICAL_ITEMS)


class BATON_SearchHit(bpy.types.PropertyGroup):
    """One library search result."""

    clip_id: StringProperty(name="Clip")
    score: FloatProperty(name="Score", precision=3)
    duration_s: FloatProperty(name="Duration", unit="TIME_ABSOLUTE", precision=1)
    license: StringProperty(name="License")
    skeleton: StringProperty(name="Skeleton")
    caption: StringProperty(name="Caption")


class BATON_Variation(bpy.types.PropertyGroup):
    """One variation of a pending Generate-from-Text result (its Action; the chosen one is ``pending_action``)."""

    action: PointerProperty(type=bpy.types.Action, name="Action")


class BATON_SceneProperties(bpy.types.PropertyGroup):
    """Everything the Baton panels edit, stored on the scene (``scene.baton``)."""

    # --- Generate from music
    audio_source: EnumProperty(
        name="Audio",
        items=(
            ("FILE", "File", "An audio file on disk"),
            ("STRIP", "Sound Strip", "The scene's sound strip (the active one if it is a sound, else the first)"),
        ),
        default="FILE",
    )
    audio_path: StringProperty(name="Audio File", subtype="FILE_PATH", description="wav, ogg, flac or mp3, 5 s-20 min")
    model: EnumProperty(name="Model", items=MODEL_ITEMS, default="procedural")
    seed: IntProperty(name="Seed", default=0, min=0, description="Same seed, same music: same performance")
    steps: IntProperty(name="Steps", default=20, min=1, max=1000, description="DDIM sampling steps (diffusion)")
    use_guidance: BoolProperty(name="Guidance", default=False, description="Classifier-free guidance (diffusion)")
    guidance: FloatProperty(name="Guidance Scale", default=2.0, min=0.0, max=20.0)
    # The procedural conductor's controls (ranges and defaults: client.CONDUCTOR_CONTROLS, the server's too)
    energy: FloatProperty(name="Energy", default=0.5, min=0.0, max=1.0,
                          description="Procedural conductor: 0 calm, 1 vigorous (faster, sharper, larger beats)")
    size: FloatProperty(name="Size", default=1.0, min=0.25, max=2.0,
                        description="Procedural conductor: size of the beat pattern (1 = a normal pattern)")
    legato: FloatProperty(name="Legato", default=0.5, min=0.0, max=1.0,
                          description="Procedural conductor: 0 staccato (sharp, stopped beats), 1 legato (flowing)")
    target: EnumProperty(name="Target", items=TARGET_ITEMS, default="ACTIVE")
    root_motion: EnumProperty(name="Root Motion", items=ROOT_ITEMS, default="full")
    foot_lock: BoolProperty(name="Foot Lock", default=True, description="Pin feet during contact (two-bone IK)")
    smoothing: FloatProperty(name="Smoothing", default=0.0, min=0.0, max=1.0)
    frame_start: IntProperty(name="Start Frame", default=1, description="Frame where the action and music start")
    add_sound_strip: BoolProperty(name="Add Music Strip", default=True, description="Music as a sound strip")
    set_scene_range: BoolProperty(name="Set Scene FPS and Range", default=True)

    # --- Generate from text
    text_prompt: StringProperty(
        name="Prompt", description="What the person does, e.g. 'a tired person waves with the left hand'"
    )
    text_auto_duration: BoolProperty(
        name="Auto Duration", default=False, description="Let the model choose the length from the prompt"
    )
    text_seconds: FloatProperty(
        name="Duration", default=4.0, min=0.0, max=3600.0, soft_min=0.5, soft_max=60.0, precision=1,
        unit="TIME_ABSOLUTE", description="Length of the motion in seconds (the backend states its limits)",
    )  # fmt: skip
    text_seed: IntProperty(name="Seed", default=0, min=0, description="Same seed, same prompt: same motion")
    text_samples: IntProperty(
        name="Variations", default=1, min=1, max=16, soft_max=8, description="How many motions to generate at once"
    )
    text_guidance: FloatProperty(
        name="Guidance", default=TEXT_GUIDANCE, min=0.0, max=50.0, soft_max=10.0,
        description="Classifier-free guidance: higher follows the prompt more closely, lower varies more",
    )  # fmt: skip

    # --- Voice (Generate from Text > Voice; duration, seed, variations and guidance are the text options)
    voice_source: EnumProperty(
        name="Recording",
        items=(
            ("FILE", "File", "An audio file with one spoken instruction (0.5-10 s)"),
            ("STRIP", "Sound Strip", "The scene's sound strip (the active one if it is a sound, else the first)"),
            ("MIC", "Microphone", "Record from the default microphone of the machine the local backend runs on"),
        ),
        default="FILE",
    )
    voice_record_seconds: FloatProperty(
        name="Record", default=4.0, min=0.5, max=10.0, precision=1, unit="TIME_ABSOLUTE",
        description="How long to record from the microphone (one instruction, 0.5-10 s)",
    )  # fmt: skip
    voice_path: StringProperty(name="Recording File", subtype="FILE_PATH",
                               description="wav, flac, ogg or mp3 with one spoken instruction, 0.5-10 s")  # fmt: skip
    voice_mode: EnumProperty(
        name="Path",
        items=(
            ("end2end", "End-to-End", "The speech itself conditions the generator (shows the nearest caption)"),
            ("cascaded", "Cascaded", "Speech is transcribed, the transcript drives the generator (shows it)"),
        ),
        default="end2end",
    )
    voice_heard: StringProperty(name="Heard", description="What the backend understood of the last recording")

    # --- Library search
    search_mode: EnumProperty(
        name="Search By",
        items=(
            ("TEXT", "Text", "Describe the motion"),
            ("ACTION", "Selected Action", "Find motions like the selected armature's action (evaluated joints)"),
            ("VIDEO", "Video", "Find motions like the person in a video: a file, or the scene's movie strip"),
        ),
        default="TEXT",
    )
    search_query: StringProperty(name="Query", description="e.g. 'a person waves their right hand'")
    video_source: EnumProperty(
        name="Video",
        items=(
            ("FILE", "File", "A video file (the backend reads it: it must lie under one of its --root folders)"),
            ("STRIP", "Movie Strip", "The scene's movie strip (the active one if it is a movie, else the first)"),
        ),
        default="FILE",
    )
    video_path: StringProperty(name="Video File", subtype="FILE_PATH", description="mp4, mkv, mov, ... up to 10 min")
    search_k: IntProperty(name="Results", default=10, min=1, max=100)
    search_thumbnails: BoolProperty(
        name="Thumbnails",
        description="Show a rendered thumbnail of each result (the backend renders a clip's mannequin once and keeps "
        "it in the library; the first time takes ~20 s for Blender to start)",
        default=True,
    )
    search_results: CollectionProperty(type=BATON_SearchHit)
    search_index: IntProperty(name="Result", default=0)

    # --- Bone mapping
    mapping: CollectionProperty(type=BATON_MappingItem)
    mapping_index: IntProperty(default=0)
    mapping_armature: StringProperty(name="Mapped Armature", description="Armature the mapping was filled from")
    use_mapping: BoolProperty(
        name="Use Custom Mapping",
        default=False,
        description="Send this mapping with jobs for the mapped armature (else the backend maps bones by name)",
    )

    # --- The result waiting for Accept / Reject (undo restores these too)
    pending_object: PointerProperty(type=bpy.types.Object, name="Result Armature")
    pending_action: PointerProperty(type=bpy.types.Action, name="Result Action")
    previous_action: PointerProperty(type=bpy.types.Action, name="Previous Action")
    pending_created_rig: BoolProperty(default=False)
    pending_frame_start: IntProperty(default=1)
    pending_variations: CollectionProperty(type=BATON_Variation)
    last_message: StringProperty(name="Message")
    last_message_is_error: BoolProperty(default=False)


CLASSES = (BATON_MappingItem, BATON_SearchHit, BATON_Variation, BATON_SceneProperties)
