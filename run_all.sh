#!/usr/bin/env bash
# xling: set up the environment (idempotent) and run a profile's notebooks, or the tests.
#
#   ./run_all.sh [--profile NAME] [--only NB ...] [--force] [--paper-data DIR] [-p KEY VALUE ...]
#   ./run_all.sh --test [pytest args ...]
#   ./run_all.sh --setup            (set-up only)
#
# Set-up creates .venv with Python 3.11, installs the CPU build of torch first (so nothing pulls a
# CUDA build), then the pinned packages of pyproject.toml, and registers the Jupyter kernel `xling`.
# It re-runs only when pyproject.toml changed since the last successful set-up.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export XLING_CALLER_CWD="$PWD"
cd "$ROOT"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"
TORCH_PIN="torch==2.13.0"

export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg

log() { printf '[xling] %s\n' "$*" >&2; }

find_python() {
    local c
    for c in "${XLING_PYTHON:-}" python3.11 python3; do
        [ -n "$c" ] || continue
        if command -v "$c" >/dev/null 2>&1 &&
            "$c" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
            command -v "$c"
            return 0
        fi
    done
    return 1
}

setup() {
    if [ ! -x "$PY" ]; then
        local base
        base="$(find_python)" || {
            log "Python 3.11 is needed (set XLING_PYTHON=/path/to/python3.11)."
            exit 2
        }
        log "creating .venv with $base"
        "$base" -m venv "$VENV"
    fi
    local stamp="$VENV/.xling-setup" want
    want="$(sha256sum pyproject.toml | cut -c1-64)"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        return 0
    fi
    log "installing pinned packages (first time: about 10 minutes, llama.cpp compiles from source)"
    if ! "$PY" -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '${TORCH_PIN#torch==}')" 2>/dev/null; then
        "$PY" -m pip install --disable-pip-version-check "$TORCH_PIN"
    fi
    CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}" \
        "$PY" -m pip install --disable-pip-version-check -e ".[dev]"
    "$PY" -m ipykernel install --sys-prefix --name xling --display-name "Python (xling)" >/dev/null
    # llama.cpp's GGUF converter is in no wheel: take it from the pinned llama-cpp-python sdist
    "$PY" -m xling.run.setup >/dev/null
    echo "$want" >"$stamp"
    log "set-up complete"
}

case "${1:-}" in
-h | --help)
    sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
--setup)
    setup
    ;;
--test)
    shift
    setup
    exec "$PY" -m pytest "$@"
    ;;
*)
    setup
    exec "$PY" -m xling.run.runner "$@"
    ;;
esac
