"""Build the installable Blender extension zip from an explicit file list, deterministically.

Usage::

    python build_addon.py [-o dist/baton-<version>.zip]

The zip holds exactly :data:`FILES` (paths relative to ``blender_addon/``) at the archive root, as Blender's extension
installer expects (``blender_manifest.toml`` at the top). Entries are written in the listed order with a fixed
timestamp (1980-01-01 00:00:00), fixed permissions and DEFLATE level 9, so building twice gives identical bytes.
Only the standard library is used, so any Python >= 3.11 can run it (also the one inside Blender).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent
ADDON_DIR = ROOT / "blender_addon"

#: Every file shipped in the extension, in archive order. Adding a module means adding it here (tests check that
#: every ``*.py`` in blender_addon/ is listed, so nothing is forgotten or shipped by accident).
FILES: tuple[str, ...] = (
    "blender_manifest.toml",
    "__init__.py",
    "preferences.py",
    "properties.py",
    "operators.py",
    "operators_rig.py",
    "panels.py",
    "jobs.py",
    "pipelines.py",
    "results.py",
    "thumbnails.py",
    "server.py",
    "remote.py",
    "mapping.py",
    "mapping_tables.py",
    "client.py",
    "wire.py",
    "space.py",
    "rigs.py",
    "apply.py",
)

#: The fixed timestamp of every entry (the earliest date a zip can store).
ZIP_DATE = (1980, 1, 1, 0, 0, 0)


def manifest_version(addon_dir: Path = ADDON_DIR) -> str:
    """The ``version`` field of ``blender_manifest.toml``. Raises ``ValueError`` if it is missing."""
    with open(addon_dir / "blender_manifest.toml", "rb") as handle:
        manifest = tomllib.load(handle)
    version = manifest.get("version")
    if not isinstance(version, str) or not version:
        raise ValueError(f"{addon_dir / 'blender_manifest.toml'}: no 'version' string")
    return version


def build(output: Path | None = None, addon_dir: Path = ADDON_DIR, files: tuple[str, ...] = FILES) -> Path:
    """Write the extension zip and return its path.

    Args:
        output: the zip to write; default ``dist/baton-<version>.zip`` under the repository.
        addon_dir: the add-on source folder.
        files: archive members (relative to ``addon_dir``), in order.

    Raises:
        FileNotFoundError: naming every listed file that does not exist (nothing is written then).

    The file is written to a temporary name beside ``output`` and moved into place, so a failed build never leaves a
    half-written zip.
    """
    missing = [name for name in files if not (addon_dir / name).is_file()]
    if missing:
        raise FileNotFoundError(f"files listed in build_addon.FILES are missing from {addon_dir}: {missing}")
    output = output or ROOT / "dist" / f"baton-{manifest_version(addon_dir)}.zip"
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(output.name + ".tmp")
    try:
        with zipfile.ZipFile(tmp, "w") as archive:
            for name in files:
                info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.create_system = 3  # Unix, so the permission bits below are honoured everywhere
                info.external_attr = (0o100644 & 0xFFFF) << 16
                data = (addon_dir / name).read_bytes()
                archive.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
        os.replace(tmp, output)
    finally:
        if tmp.exists():
            tmp.unlink()
    return output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, default=None, help="zip to write (default dist/baton-<v>.zip)")
    args = parser.parse_args(argv)
    path = build(args.output)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    print(f"{path} sha256={digest}", file=sys.stderr)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
