#!/usr/bin/env bash
# xling: set up the environment (idempotent) and run a profile's notebooks, or the tests.
#
#   ./run_all.sh [--profile NAME] [--run RUN] [--only NB ...] [--force] [--paper-data DIR] [-p KEY VALUE ...]
#   ./run_all.sh --test [pytest args ...]    (-m "not slow": the fast tier)
#   ./run_all.sh --lab [jupyter lab args]    JupyterLab at the repository root, kernel "Python (xling)"
#   ./run_all.sh --params [NOTEBOOK ...]     every notebook parameter: name, type, default, comment
#   ./run_all.sh --setup                     (set-up only)
#   ./run_all.sh --gpu ...                   set up torch's default (CUDA) build, not the CPU one
#
# Set-up creates .venv with Python 3.11, installs torch first (the CPU build from PyTorch's CPU
# index when it answers, else the pinned version from the default index; --gpu or XLING_TORCH=cuda:
# the default CUDA build), then the pinned packages of pyproject.toml, and registers the Jupyter
# kernel `xling`. It re-runs only when pyproject.toml or the torch build asked for changed.
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
    local stamp="$VENV/.xling-setup" want torch_args
    want="$(sha256sum pyproject.toml | cut -c1-64) torch=${XLING_TORCH:-cpu}"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        return 0
    fi
    log "installing pinned packages (first time: about 10 minutes, llama.cpp compiles from source)"
    # which torch, from where: xling.run.setup decides (standard library only, so it runs before
    # anything is installed)
    torch_args="$(PYTHONPATH="$ROOT/lib" "$PY" -m xling.run.setup torch-args "$TORCH_PIN")"
    if [ -n "$torch_args" ]; then
        # shellcheck disable=SC2086  # the arguments are words: a pin, flags, an index URL
        "$PY" -m pip install --disable-pip-version-check $torch_args
    fi
    log "$(PYTHONPATH="$ROOT/lib" "$PY" -m xling.run.setup torch-build)"
    CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}" \
        "$PY" -m pip install --disable-pip-version-check -e ".[dev]"
    "$PY" -m ipykernel install --sys-prefix --name xling --display-name "Python (xling)" >/dev/null
    # llama.cpp's GGUF converter is in no wheel: take it from the pinned llama-cpp-python sdist
    "$PY" -m xling.run.setup >/dev/null
    echo "$want" >"$stamp"
    log "set-up complete"
}

if [ "${1:-}" = "--gpu" ]; then
    export XLING_TORCH=cuda
    shift
fi

case "${1:-}" in
-h | --help)
    sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
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
--lab)
    shift
    setup
    exec "$PY" -m xling.run.lab "$@"
    ;;
--params)
    shift
    setup
    exec "$PY" -m xling.run.params "$@"
    ;;
*)
    setup
    exec "$PY" -m xling.run.runner "$@"
    ;;
esac
