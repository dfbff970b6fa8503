"""Set-up helpers run by ``run_all.sh --setup``: which build of torch to install, and llama.cpp's
GGUF converter, taken from the pinned llama-cpp-python source distribution (it is in no wheel).

    python -m xling.run.setup                  # install the converter (idempotent)
    python -m xling.run.setup torch-args PIN   # pip arguments for torch (empty: nothing to do)
    python -m xling.run.setup torch-build      # which torch build is installed, in words

The torch commands run before any package of pyproject.toml is installed (``PYTHONPATH=lib``), so
this module imports nothing but the standard library at import time.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import sys
import tarfile
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

# --------------------------------------------------------------------------------------------
# torch: the CPU build for CPU users, the default (CUDA) build on request
# --------------------------------------------------------------------------------------------

#: PyTorch's own index of CPU-only wheels (no CUDA libraries: a fraction of the download).
PYTORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
#: ``XLING_TORCH``: ``cpu`` (the default) or ``cuda``; ``run_all.sh --gpu`` sets ``cuda``.
TORCH_ENV = "XLING_TORCH"
TORCH_BUILDS = ("cpu", "cuda")


def wanted_torch_build(environ: dict[str, str] | None = None) -> str:
    """The torch build set-up should install: ``XLING_TORCH`` (cpu or cuda), cpu by default."""
    value = (os.environ if environ is None else environ).get(TORCH_ENV, "").strip().lower()
    if value == "":
        return "cpu"
    if value not in TORCH_BUILDS:
        raise ValueError(
            f"{TORCH_ENV}={value!r}: expected one of {', '.join(TORCH_BUILDS)} "
            "(or run_all.sh --gpu for cuda)"
        )
    return value


def index_reachable(url: str = PYTORCH_CPU_INDEX, timeout: float = 5.0) -> bool:
    """Whether ``url`` answers within ``timeout`` seconds (a quick look before pip tries it: an
    unreachable index would otherwise cost pip's retries)."""
    req = urllib.request.Request(url.rstrip("/") + "/torch/", method="HEAD")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return 200 <= r.status < 400
    except (OSError, ValueError):  # URLError, timeouts and refused connections are OSErrors
        return False


@dataclass(frozen=True)
class Installed:
    """The torch in the environment: its version (``2.13.0+cpu``) and CUDA version (None for a
    CPU build)."""

    version: str
    cuda: str | None

    @property
    def build(self) -> str:
        return "cuda" if self.cuda else "cpu"

    def describe(self) -> str:
        kind = f"CUDA {self.cuda} build" if self.cuda else "CPU build"
        return f"torch {self.version} ({kind})"


@dataclass(frozen=True)
class TorchPlan:
    """What set-up does about torch: the pip arguments (empty: nothing) and why, in words."""

    pip_args: tuple[str, ...]
    reason: str


def torch_plan(
    pin: str,
    build: str,
    installed: Installed | None,
    reachable: Callable[[str], bool] = index_reachable,
) -> TorchPlan:
    """How to install ``pin`` (``torch==2.13.0``) as ``build`` (cpu or cuda).

    - The pinned version of the wanted build already there: nothing to do.
    - cpu: from PyTorch's CPU index when it answers (pip's default index serves the CUDA build on
      Linux x86_64, gigabytes of CUDA libraries a CPU never uses); otherwise the pinned version
      from the default index (which may be a CPU wheel, as on a machine with a local wheel
      folder, or the CUDA build).
    - cuda: the pinned version from the default index (the CUDA build on Linux).
    An installed torch of the other build is replaced (``--force-reinstall``: pip counts
    ``2.13.0+cpu`` as satisfying ``torch==2.13.0``).
    """
    if build not in TORCH_BUILDS:
        raise ValueError(f"torch build {build!r}: expected one of {', '.join(TORCH_BUILDS)}")
    version = pin.split("==", 1)[1] if "==" in pin else None
    if version is None:
        raise ValueError(f"torch pin {pin!r}: expected torch==VERSION")
    same_version = installed is not None and installed.version.split("+")[0] == version
    if same_version and installed.build == build:
        return TorchPlan((), f"{installed.describe()} already installed")
    force = ("--force-reinstall",) if same_version else ()
    if build == "cuda":
        return TorchPlan((pin, *force), "the default index's build (CUDA on Linux), as asked")
    if reachable(PYTORCH_CPU_INDEX):
        return TorchPlan(
            (pin, *force, "--index-url", PYTORCH_CPU_INDEX),
            f"the CPU build from {PYTORCH_CPU_INDEX}",
        )
    return TorchPlan(
        (pin, *force),
        f"{PYTORCH_CPU_INDEX} is not reachable: the pinned version from the default index",
    )


def installed_torch() -> Installed | None:
    """The torch importable here, or None."""
    try:
        import torch
    except ImportError:
        return None
    return Installed(torch.__version__, torch.version.cuda)


#: Members of the llama-cpp-python sdist needed to convert models (under vendor/llama.cpp/).
CONVERTER_MEMBERS = (
    "convert_hf_to_gguf.py",
    "convert_lora_to_gguf.py",
    "conversion/",
    "gguf-py/",
    "LICENSE",
)


def _sdist_url(version: str) -> tuple[str, str]:
    """URL and sha256 of the sdist, from PyPI's simple index (PEP 691 JSON)."""
    req = urllib.request.Request(
        "https://pypi.org/simple/llama-cpp-python/",
        headers={"Accept": "application/vnd.pypi.simple.v1+json"},
    )
    with urllib.request.urlopen(req, timeout=60) as r:
        files = json.load(r)["files"]
    name = f"llama_cpp_python-{version}.tar.gz"
    for f in files:
        if f["filename"] == name:
            return f["url"], f["hashes"]["sha256"]
    raise RuntimeError(f"{name} not found on PyPI")


def install_converter(force: bool = False) -> Path:
    """Fetch the pinned llama-cpp-python sdist and extract the converter files (idempotent)."""
    from xling.models.quantize import converter_dir, llama_cpp_version

    dest = converter_dir()
    if (dest / "convert_hf_to_gguf.py").exists() and not force:
        return dest
    version = llama_cpp_version()
    url, sha = _sdist_url(version)
    print(f"fetching llama.cpp converter from llama-cpp-python {version} sdist", flush=True)
    with urllib.request.urlopen(url, timeout=600) as r:
        blob = r.read()
    if hashlib.sha256(blob).hexdigest() != sha:
        raise RuntimeError(f"{url}: sha256 differs from PyPI's ({sha})")
    prefix = f"llama_cpp_python-{version}/vendor/llama.cpp/"
    tmp = dest.with_name(dest.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tar:
        members = []
        for m in tar.getmembers():
            if not m.name.startswith(prefix):
                continue
            rel = m.name[len(prefix) :]
            if any(rel == w or (w.endswith("/") and rel.startswith(w)) for w in CONVERTER_MEMBERS):
                m.name = rel
                members.append(m)
        tar.extractall(tmp, members=members, filter="data")
    if not (tmp / "convert_hf_to_gguf.py").exists():
        raise RuntimeError(f"convert_hf_to_gguf.py not found in {url}")
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    return dest


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["torch-args"]:
        if len(args) != 2:
            print("usage: python -m xling.run.setup torch-args torch==VERSION", file=sys.stderr)
            return 2
        try:
            plan = torch_plan(args[1], wanted_torch_build(), installed_torch())
        except ValueError as err:
            print(f"run_all.sh: {err}", file=sys.stderr)
            return 2
        print(f"torch: {plan.reason}", file=sys.stderr)
        print(" ".join(plan.pip_args))
        return 0
    if args[:1] == ["torch-build"]:
        torch = installed_torch()
        print(torch.describe() if torch else "torch is not installed")
        return 0 if torch else 1
    print(install_converter(force="--force" in args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
