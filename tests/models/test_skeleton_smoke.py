"""Registry skeletons are valid and physically plausible (full core tests live beside this file)."""

import numpy as np
import pytest

from models.motion import get_skeleton, skeleton_names


@pytest.mark.parametrize("name", ["smpl24", "smpl22", "kit21", "coco13"])
def test_registry_skeleton_is_upright_and_human_sized(name):
    skeleton = get_skeleton(name)
    rest = skeleton.rest_positions()
    height = rest[:, 1].max() - rest[:, 1].min()
    assert 0.6 < height < 2.0, f"{name} rest height {height:.2f} m"
    assert np.isfinite(rest).all()


def test_unknown_skeleton_names_the_known_ones():
    with pytest.raises(ValueError, match="unknown skeleton 'smpl99'.*smpl24"):
        get_skeleton("smpl99")
    assert set(skeleton_names()) == {"smpl24", "smpl22", "kit21", "coco13"}
