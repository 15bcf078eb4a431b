#!/usr/bin/env bash
# Runs the whole test suite: lint, the backend/models tier (.venv) and the Blender tier (.venv-blender, real bpy).
# Sets the environments up first if they are missing (no demo run).
set -euo pipefail
cd "$(dirname "$0")/.."
BATON_SKIP_DEMO=1 bash scripts/setup.sh
export NUMBA_CACHE_DIR="${NUMBA_CACHE_DIR:-$PWD/.cache/numba}" ORT_DISABLE_TELEMETRY=1 HF_HUB_OFFLINE=1

echo "== ruff" >&2
.venv/bin/ruff check .

echo "== backend and models tier" >&2
.venv/bin/python -m pytest -q tests --ignore=tests/blender "$@"

echo "== Blender tier (bpy)" >&2
PYTHONPATH="$PWD" .venv-blender/bin/python -m pytest -q tests/blender -p no:cacheprovider "$@"
