"""Text -> motion pipelines (generation onto any rig) used by ``baton generate`` and the backend's job."""

from backend.instruct.pipeline import RIG_NAMES, generate_to_rig, save_generated

__all__ = ["RIG_NAMES", "generate_to_rig", "save_generated"]
