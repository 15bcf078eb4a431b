"""The motion core: skeletons, the Motion type, kinematics, BVH and dataset formats.

Backend space (../shared/DESIGN.md §2): metres, seconds, radians; right-handed, +Y up, +Z forward.
"""

from models.motion.bvh import BVHClip, load_bvh, parse_bvh, read_bvh, save_bvh, write_bvh
from models.motion.kinematics import forward_kinematics, identity_rotations, resample
from models.motion.motion import Motion
from models.motion.skeleton import Skeleton, get_skeleton, skeleton_names

__all__ = [
    "BVHClip", "Motion", "Skeleton", "forward_kinematics", "get_skeleton", "identity_rotations", "load_bvh",
    "parse_bvh", "read_bvh", "resample", "save_bvh", "skeleton_names", "write_bvh",
]  # fmt: skip
