"""Where captions, tags and licenses come from, per source collection.

- **Bandai Namco Research motion datasets 1 and 2** (``dataset-<n>_<content>_<style>_<id>.bvh``): the clip's JSON
  (``{"content": i, "style": j}``) indexes ``cfg/content_label.txt`` / ``cfg/style_label.txt``; the labels become a
  caption such as "a person waves their right hand in a tired way" and ``content:`` / ``style:`` tags. License
  CC BY-NC 4.0 (non-commercial), whether or not a LICENSE file sits beside the clips.
- **CMU mocap** (``<subject>_<trial>.bvh``): CMU's own trial description from the CMU index CSV, plus the KIT-ML crowd
  texts whose AMASS path is ``CMU/<subject>/<subject>_<trial>_poses``.
- **HumanML3D** (``new_joints/<id>.npy``): ``texts/<id>.txt`` lines ``caption#tokens#start#end``.
- Otherwise: the license named by a ``LICENSE``/``SOURCE.md`` file in the clip's folder or up to three folders above.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from models.licenses import BANDAI_NAMCO_LICENSE

BANDAI_LICENSE = BANDAI_NAMCO_LICENSE
CMU_LICENSE = "CMU mocap terms (free for products, no resale)"
UNKNOWN_LICENSE = "unknown"

_BANDAI_NAME = re.compile(r"^dataset-(\d+)_(.+?)_([^_]+)_(\d+)$")
_CMU_NAME = re.compile(r"^(\d+)_(\d+)$")

#: Bandai content label -> verb phrase after "a person".
BANDAI_CONTENT_PHRASES = {
    "walk": "walks", "run": "runs", "dash": "dashes forward", "walk-back": "walks backwards",
    "walk-left": "walks to the left", "walk-right": "walks to the right", "bow": "bows",
    "bye": "waves goodbye with one hand", "guide": "guides someone the way with a hand gesture",
    "byebye": "waves goodbye with both hands", "respond": "responds to someone with a gesture",
    "call": "calls someone over with a hand gesture", "punch": "throws a punch", "kick": "kicks",
    "slash": "slashes with a sword", "dance-long": "dances", "dance-short": "dances briefly",
    "walk-turn-left": "walks and turns left", "walk-turn-right": "walks and turns right",
    "wave-both-hands": "waves both hands", "wave-left-hand": "waves their left hand",
    "wave-right-hand": "waves their right hand", "raise-up-both-hands": "raises both hands",
    "raise-up-left-hand": "raises their left hand", "raise-up-right-hand": "raises their right hand",
}  # fmt: skip
#: Bandai style label -> manner phrase ("" for the neutral style).
BANDAI_STYLE_PHRASES = {
    "normal": "", "happy": "in a happy way", "sad": "in a sad way", "angry": "in an angry way",
    "proud": "in a proud way", "not-confident": "in an unconfident way", "masculinity": "in a masculine way",
    "masculine": "in a masculine way", "feminine": "in a feminine way", "childish": "in a childish way",
    "old": "like an old person", "elderly": "like an elderly person", "tired": "in a tired way",
    "exhausted": "in an exhausted way", "active": "in an energetic way", "musical": "in a musical way",
    "giant": "like a giant", "chimpira": "like a street thug", "youthful": "in a youthful way",
}  # fmt: skip

_LICENSE_FIRST_LINES = {
    "attribution-noncommercial 4.0 international": "CC BY-NC 4.0",
    "attribution-noncommercial-sharealike 4.0 international": "CC BY-NC-SA 4.0",
    "attribution 4.0 international": "CC BY 4.0",
    "mit license": "MIT",
    "apache license": "Apache-2.0",
}


@dataclass
class ClipLabels:
    """Captions, tags and license found for one clip."""

    captions: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    license: str = UNKNOWN_LICENSE


def bandai_caption(content: str, style: str) -> str:
    """"a person <content phrase> <style phrase>" for Bandai labels (unknown labels are spelled out).

    >>> bandai_caption("wave-right-hand", "tired")
    'a person waves their right hand in a tired way'
    """
    verb = BANDAI_CONTENT_PHRASES.get(content, content.replace("-", " "))
    manner = BANDAI_STYLE_PHRASES.get(style, f"in a {style.replace('-', ' ')} way")
    return " ".join(part for part in ("a person", verb, manner) if part)


@lru_cache(maxsize=32)
def _label_lists(cfg_dir: Path) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    contents, styles = cfg_dir / "content_label.txt", cfg_dir / "style_label.txt"
    if not (contents.is_file() and styles.is_file()):
        return None

    def read(path: Path) -> tuple[str, ...]:
        return tuple(re.sub(r"^dataset-\d+_", "", line.strip()) for line in path.read_text().splitlines() if line)

    return read(contents), read(styles)


def _bandai_labels(path: Path) -> tuple[str, str, str] | None:
    """``(dataset number, content, style)`` from the clip's JSON + cfg label lists, else from its file name."""
    match = _BANDAI_NAME.match(path.stem)
    if not match:
        return None
    dataset, content, style = match.group(1), match.group(2), match.group(3)
    sidecar = path.with_suffix(".json")
    lists = _label_lists(path.parent.parent / "cfg")
    if sidecar.is_file() and lists is not None:
        try:
            ids = json.loads(sidecar.read_text())
            content, style = lists[0][int(ids["content"])], lists[1][int(ids["style"])]
        except (ValueError, KeyError, IndexError, TypeError):
            pass  # a malformed sidecar: the file name carries the same labels
    return dataset, content, style


@lru_cache(maxsize=8)
def load_cmu_index(path: Path) -> dict[tuple[int, int], str]:
    """CMU trial descriptions ``{(subject, trial): description}`` from the index CSV (columns Subject, Trial #,
    Motion Description)."""
    table: dict[tuple[int, int], str] = {}
    with open(path, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            try:
                table[(int(row["Subject"]), int(row["Trial #"]))] = row["Motion Description"].strip()
            except (KeyError, ValueError):
                continue
    return table


@lru_cache(maxsize=8)
def load_kitml_texts(path: Path) -> dict[str, list[str]]:
    """KIT-ML texts keyed by AMASS path (``"CMU/131/131_02_poses"`` -> texts) from TMR's ``annotations.json``."""
    data = json.loads(Path(path).read_text())
    table: dict[str, list[str]] = {}
    for entry in data.values():
        texts = [a["text"].strip() for a in entry.get("annotations", []) if a.get("text", "").strip()]
        if texts:
            table.setdefault(entry["path"], []).extend(texts)
    return table


def license_from_files(path: Path, levels: int = 3) -> str | None:
    """The license named by a LICENSE* file (first line) or a SOURCE.md "License" line in ``path``'s folder or up to
    ``levels`` folders above; ``None`` when there is none."""
    folder = path.parent
    for _ in range(levels + 1):
        for candidate in sorted(folder.glob("LICENSE*")):
            if candidate.is_file():
                first = candidate.read_text(errors="replace").strip().splitlines()[:1]
                key = first[0].strip().lower() if first else ""
                for prefix, name in _LICENSE_FIRST_LINES.items():
                    if key.startswith(prefix):
                        return name
        source = folder / "SOURCE.md"
        if source.is_file():
            found = re.search(r"CC BY(?:-NC)?(?:-SA)?(?:-ND)? \d\.\d", source.read_text(errors="replace"))
            if found:
                return found.group(0)
        if folder.parent == folder:
            break
        folder = folder.parent
    return None


@dataclass(frozen=True)
class AnnotationSources:
    """Optional text sources: the CMU index CSV and TMR's KIT-ML ``annotations.json``."""

    cmu_index: Path | None = None
    kitml_annotations: Path | None = None


def labels_for_bvh(path: Path, sources: AnnotationSources) -> ClipLabels:
    """Captions, tags and license of a BVH clip from its collection's conventions (module docstring)."""
    labels = ClipLabels()
    bandai = _bandai_labels(path)
    if bandai is not None:
        dataset, content, style = bandai
        labels.captions.append(bandai_caption(content, style))
        labels.tags += [f"content:{content}", f"style:{style}", f"bandai-namco-{dataset}"]
        labels.license = BANDAI_LICENSE
        return labels
    cmu = _CMU_NAME.match(path.stem)
    if cmu:
        subject, trial = int(cmu.group(1)), int(cmu.group(2))
        if sources.cmu_index is not None and sources.cmu_index.is_file():
            description = load_cmu_index(sources.cmu_index).get((subject, trial))
            if description:
                labels.captions.append(description)
                labels.tags.append("cmu-index")
        if sources.kitml_annotations is not None and sources.kitml_annotations.is_file():
            key = f"CMU/{subject}/{subject}_{trial:02d}_poses"
            texts = load_kitml_texts(sources.kitml_annotations).get(key, [])
            labels.captions += [t for t in texts if t not in labels.captions]
            if texts:
                labels.tags.append("kit-ml")
        labels.tags += ["cmu", f"cmu-subject:{subject}"]
        labels.license = license_from_files(path) or CMU_LICENSE
        return labels
    labels.license = license_from_files(path) or UNKNOWN_LICENSE
    return labels


def humanml3d_captions(joints_path: Path) -> list[str]:
    """Captions of a HumanML3D clip from ``../texts/<id>.txt`` beside its ``new_joints`` folder ([] when absent)."""
    text_file = joints_path.parent.parent / "texts" / (joints_path.stem + ".txt")
    if not text_file.is_file():
        return []
    captions = []
    for line in text_file.read_text(encoding="utf-8").splitlines():
        caption = line.split("#", 1)[0].strip()
        if caption and caption not in captions:
            captions.append(caption)
    return captions


#: Environment variable naming the shared data folder (CMU index, KIT-ML annotations) used by default.
SHARED_DATA_ENV = "BATON_SHARED_DATA"


def default_annotation_sources() -> AnnotationSources:
    """The CMU index and KIT-ML texts from ``$BATON_SHARED_DATA`` or, when unset, ``shared/data`` beside the Baton
    checkout (``cmu_mocap_index/cmu_mocap_clip_descriptions.csv``, ``tmr_text_motion_annotations/kitml/
    annotations.json``); missing files are left out."""
    import os

    root = Path(os.environ.get(SHARED_DATA_ENV) or Path(__file__).resolve().parents[3] / "shared" / "data")
    cmu = root / "cmu_mocap_index" / "cmu_mocap_clip_descriptions.csv"
    kit = root / "tmr_text_motion_annotations" / "kitml" / "annotations.json"
    return AnnotationSources(cmu if cmu.is_file() else None, kit if kit.is_file() else None)
