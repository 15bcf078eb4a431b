"""Music -> conductor: audio front end, generators (procedural, diffusion, m2sgan) behind one interface.

``analyze_audio(path) -> MusicFeatures``, ``available_models()``, ``generate(features, model=...) -> Motion``
(``coco13``, 30 fps, image coordinates). See docs/conductor.md.
"""

from models.conductor.audio import MusicFeatures, analyze_audio, analyze_signal
from models.conductor.procedural import ProceduralStyle, procedural_motion
from models.conductor.registry import available_models, generate, load_generator

__all__ = [
    "MusicFeatures", "ProceduralStyle", "analyze_audio", "analyze_signal", "available_models", "generate",
    "load_generator", "procedural_motion",
]  # fmt: skip
