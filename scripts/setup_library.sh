#!/usr/bin/env bash
# Fill the per-user default motion library once, so `baton search` and the add-on's search work right after setup.
#
# When ../shared/data (or $BATON_SHARED_DATA) is there and the default library ($BATON_LIBRARY, else
# <Baton data folder>/library.sqlite) has no clips yet, this imports Bandai Namco dataset-1 and dataset-2 (CC BY-NC
# 4.0, non-commercial; dataset-2's .tar.xz is unpacked into Baton's cache folder for the import and deleted after it,
# never into the repository) and CMU subject 131, embedded with the shipped retrieval weights
# (models/retrieval/weights/default). A library that already has clips is left alone, so running it again is quick.
# BATON_SKIP_LIBRARY=1 skips it. Called by scripts/setup.sh; safe to run by hand.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "${BATON_SKIP_LIBRARY:-0}" = "1" ] && { echo "setup-library: skipped (BATON_SKIP_LIBRARY=1)" >&2; exit 0; }
BATON=.venv/bin/baton
DATA=${BATON_SHARED_DATA:-../shared/data}
MODEL=models/retrieval/weights/default

# the number of clips in the default library (0 when it does not exist yet); "?" when it cannot be opened
clips=$(.venv/bin/python - <<'PY'
from backend.library import open_library
try:
    with open_library(create=False) as library:
        print(library.stats()["clips"])
except FileNotFoundError:
    print(0)
except ValueError as exc:
    import sys
    print(f"setup-library: {exc}", file=sys.stderr)
    print("?")
PY
)
if [ "$clips" = "?" ]; then
  echo "setup-library: the default library cannot be opened; nothing imported" >&2
  exit 0
fi
if [ "$clips" != "0" ]; then
  echo "setup-library: the default library already holds $clips clips; nothing to import" >&2
  exit 0
fi
if [ ! -d "$DATA/bandai_namco_motion_dataset1" ] || [ ! -d "$DATA/cmu_mocap_subject131_bvh" ]; then
  echo "setup-library: no motion data at $DATA; the default library stays empty. Import your own motions with" \
       "'.venv/bin/baton library import PATH...' (BVH, Baton .npz, HumanML3D, AMASS) before searching." >&2
  exit 0
fi

paths=("$DATA/bandai_namco_motion_dataset1" "$DATA/cmu_mocap_subject131_bvh")
archive="$DATA/bandai_namco_motion_dataset2/bandai_namco_motion_dataset2.tar.xz"
cache=$(.venv/bin/python -c 'from models.paths import user_cache_dir; print(user_cache_dir())')
unpacked=""
cleanup() { if [ -n "$unpacked" ]; then rm -rf "$unpacked"; fi; }
trap cleanup EXIT
if [ -f "$archive" ]; then
  mkdir -p "$cache"
  unpacked=$(mktemp -d "$cache/setup-bandai2.XXXXXX")
  tar -xJf "$archive" -C "$unpacked"
  paths+=("$unpacked")
fi
echo "setup-library: importing ${paths[*]} into the default library (a few minutes)" >&2
model=()  # embed at import with the shipped weights (else clips are embedded on the first search)
if [ -f "$MODEL/model.safetensors" ]; then model=(--model "$MODEL"); fi
"$BATON" library import "${paths[@]}" "${model[@]}" --json >/dev/null
"$BATON" library stats
