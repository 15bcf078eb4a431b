"""The extension zip installs with Blender's own installer and registers / unregisters cleanly."""

from __future__ import annotations

import hashlib
import sys
import zipfile

import addon_utils
import bpy
import pytest
from conftest import ADDON_MODULE, REPO


def _registered_baton_classes() -> set[str]:
    return {name for name in dir(bpy.types) if name.startswith("BATON_")}


def test_zip_is_deterministic_and_lists_exactly_the_shipped_files(addon_zip, tmp_path):
    import build_addon

    again = build_addon.build(tmp_path / "again.zip")
    assert hashlib.sha256(again.read_bytes()).digest() == hashlib.sha256(addon_zip.read_bytes()).digest()
    with zipfile.ZipFile(addon_zip) as archive:
        names = archive.namelist()
        assert names == list(build_addon.FILES)
        assert {info.date_time for info in archive.infolist()} == {build_addon.ZIP_DATE}
    shipped_python = {name for name in build_addon.FILES if name.endswith(".py")}
    on_disk = {path.name for path in (REPO / "blender_addon").glob("*.py")}
    assert shipped_python == on_disk, "every add-on module must be listed in build_addon.FILES (and only those)"


def test_missing_listed_file_fails_without_writing(tmp_path):
    import build_addon

    target = tmp_path / "broken.zip"
    with pytest.raises(FileNotFoundError, match="not_there.py"):
        build_addon.build(target, files=(*build_addon.FILES, "not_there.py"))
    assert not target.exists() and not list(tmp_path.iterdir())


def test_installed_extension_registers_everything(addon):
    assert addon_utils.check(ADDON_MODULE) == (True, True)
    assert hasattr(bpy.types.Scene, "baton")
    assert all(cls.is_registered for cls in addon.classes)
    assert _registered_baton_classes() >= {"BATON_PT_generate", "BATON_OT_generate", "BATON_UL_hits"}
    panels = [cls for cls in addon.classes if issubclass(cls, bpy.types.Panel)]
    assert {p.bl_category for p in panels} == {"Baton"} and {p.bl_space_type for p in panels} == {"VIEW_3D"}
    prefs = bpy.context.preferences.addons[ADDON_MODULE].preferences
    assert prefs.backend_url.startswith("http://127.0.0.1")
    assert bpy.context.scene.baton.model == "procedural"


def test_enable_disable_enable_leaves_nothing_stale(addon, clean_scene):
    jobs = sys.modules[ADDON_MODULE + ".jobs"]
    # A finished job leaves the timer registered (bpy has no event loop to let it expire): disable must remove it.
    job = jobs.runner().submit(jobs.Job(kind="probe", label="test", work=lambda job: 1, silent=True))
    job._thread.join(5)
    assert bpy.app.timers.is_registered(jobs.poll)

    addon_utils.disable(ADDON_MODULE, default_set=True)
    assert not hasattr(bpy.types.Scene, "baton")
    assert _registered_baton_classes() == set()
    assert not any(cls.is_registered for cls in addon.classes)
    assert not bpy.app.timers.is_registered(jobs.poll)
    assert jobs._runner is None
    assert ADDON_MODULE not in bpy.context.preferences.addons

    addon_utils.enable(ADDON_MODULE, default_set=True)
    assert hasattr(bpy.types.Scene, "baton")
    assert all(cls.is_registered for cls in addon.classes)
    assert jobs.runner().jobs == [] and not bpy.app.timers.is_registered(jobs.poll)
    # Exactly one report listener after re-enabling (no duplicates from the first registration).
    assert jobs.runner().listeners.count(sys.modules[ADDON_MODULE + ".pipelines"].report_finished) == 1


def test_manifest_passes_blenders_own_strict_validation():
    import os
    import tomllib

    # bpy's package is <version>/scripts/modules/bpy; Blender's extension tooling is <version>/scripts/addons_core
    cli = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(bpy.__file__))), "addons_core", "bl_pkg", "cli")
    sys.path.insert(0, cli)
    try:
        import blender_ext
    finally:
        sys.path.remove(cli)
    with open(REPO / "blender_addon" / "blender_manifest.toml", "rb") as handle:
        manifest = tomllib.load(handle)
    result = blender_ext.pkg_manifest_from_dict_and_validate(manifest, from_repo=False, strict=True)
    assert not isinstance(result, str), result  # the validator returns the error text, or the parsed manifest
    assert result.id == "baton" and result.blender_version_min == "4.2.0"
