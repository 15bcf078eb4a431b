"""Search-result thumbnails in the UI: the backend's rendered mannequin contact sheets as Blender preview icons.

The backend's ``thumbnails`` job answers PNG bytes per library clip (:mod:`backend.render.thumbnails`; rendered once
per clip and kept in the library). They are written into a per-session temporary folder and loaded into one
``bpy.utils.previews`` collection keyed by clip id, so the results list and the selected hit can show them
(``icon_value``). :func:`clear` (called on unregister) removes the collection and the folder. Main thread only.
"""

from __future__ import annotations

import os
import shutil
import tempfile

import bpy
import bpy.utils.previews

_collection = None
_folder: str | None = None


def _previews():
    global _collection, _folder
    if _collection is None:
        _collection = bpy.utils.previews.new()
        _folder = tempfile.mkdtemp(prefix="baton-thumbnails-")
    return _collection


def store(items: list[dict]) -> int:
    """Load ``[{"clip_id", "png": bytes, ...}]`` as previews (replacing older ones of the same clip); returns how
    many were loaded. Raises ``ValueError`` for an item whose bytes are not a PNG."""
    collection = _previews()
    for item in items:
        png = item["png"]
        if not png.startswith(b"\x89PNG\r\n\x1a\n"):
            raise ValueError(f"thumbnail of clip {item['clip_id']} is not a PNG")
        key = str(item["clip_id"])
        path = os.path.join(_folder, f"{key}.png")
        with open(path + ".tmp", "wb") as handle:
            handle.write(png)
        os.replace(path + ".tmp", path)
        if key in collection:
            del collection[key]  # a preview reads its file once: load the new one under the same key
        collection.load(key, path, "IMAGE", force_reload=True)
    return len(items)


def preview(clip_id: str | int):
    """The clip's ``ImagePreview``, or ``None`` when no thumbnail was loaded."""
    if _collection is None:
        return None
    return _collection.get(str(clip_id))


def icon_id(clip_id: str | int) -> int:
    """The clip's preview icon id for ``icon_value`` (0: none loaded, or Blender runs without a UI)."""
    found = preview(clip_id)
    return int(found.icon_id) if found is not None else 0


def clear() -> None:
    """Forget every thumbnail: remove the preview collection and its temporary folder."""
    global _collection, _folder
    if _collection is not None:
        bpy.utils.previews.remove(_collection)
        _collection = None
    if _folder is not None:
        shutil.rmtree(_folder, ignore_errors=True)
        _folder = None
