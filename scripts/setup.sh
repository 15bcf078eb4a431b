#!/usr/bin/env bash
# One-command setup: creates .venv (backend, CPU torch) and .venv-blender (bpy), installs the system packages the
# project needs, then runs `baton demo` (skip it with BATON_SKIP_DEMO=1). Safe to run again: it only adds what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${BATON_PYTHON:-python3.11}
command -v "$PY" >/dev/null || { echo "setup: $PY not found; Baton needs Python 3.11 (set BATON_PYTHON)" >&2; exit 1; }

bash scripts/system-packages.sh

if [ ! -x .venv/bin/python ]; then "$PY" -m venv .venv; fi
.venv/bin/python -m pip install -q --upgrade pip
# constraints.txt pins the CPU build of torch so no CUDA wheels are pulled (GPU: see README).
.venv/bin/python -m pip install -q -c constraints.txt -e ".[dev]"

if [ ! -x .venv-blender/bin/python ]; then "$PY" -m venv .venv-blender; fi
.venv-blender/bin/python -m pip install -q --upgrade pip
.venv-blender/bin/python -m pip install -q -r requirements-blender.txt

# Blender 4.2 LTS (legacy action API) for the apply-layer tests; optional for users (BATON_SKIP_BPY42=1 skips it).
if [ "${BATON_SKIP_BPY42:-0}" != "1" ]; then
  if [ ! -x .venv-blender42/bin/python ]; then "$PY" -m venv .venv-blender42; fi
  .venv-blender42/bin/python -m pip install -q -r requirements-blender42.txt
fi

# Video search's pose front end (.venv-pose): mediapipe's last release with the pose models bundled in its wheel
# pins numpy<2 and protobuf<5, which .venv (onnx) cannot share; see requirements-pose.txt.
if [ ! -x .venv-pose/bin/python ]; then "$PY" -m venv .venv-pose; fi
.venv-pose/bin/python -m pip install -q --upgrade pip
.venv-pose/bin/python -m pip install -q -r requirements-pose.txt

echo "setup: .venv, .venv-blender, .venv-blender42 and .venv-pose ready" >&2

# Default motion library for `baton search` / the add-on: imports ../shared/data's motions once (skipped when the
# library has clips or the data is absent; BATON_SKIP_LIBRARY=1 skips it). See scripts/setup_library.sh.
bash scripts/setup_library.sh

if [ "${BATON_SKIP_DEMO:-0}" != "1" ]; then
  .venv/bin/baton demo
fi
