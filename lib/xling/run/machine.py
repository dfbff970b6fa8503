"""The machine a run or a benchmark ran on: CPU, memory, GPU, package versions against their pins,
the code's version, and process memory.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import re
import resource
import subprocess
import sys
import tomllib
from pathlib import Path

from xling import paths


def machine_info() -> dict:
    """CPU model, cores, RAM, host, and the versions of what runs the models."""
    from importlib import metadata

    memory = total_memory()
    versions = {}
    for pkg in ("torch", "transformers", "peft", "llama-cpp-python", "numpy"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    return {
        "host": platform.node(),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "ram_gb": round(memory / 1e9, 1) if memory else None,
        "python": platform.python_version(),
        "versions": versions,
    }


def peak_rss_mb() -> float:
    """This process's peak resident memory (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float | None:
    """This process's resident memory now."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def pinned_packages() -> list[tuple[str, str, str]]:
    """(name, pinned version, extra) of the project's dependencies and its ``gpu`` extra ('' for
    a plain dependency), read from pyproject.toml; from the installed package's metadata when
    pyproject.toml is not there."""
    reqs: list[tuple[str, str]] = []
    try:
        project = tomllib.loads((paths.ROOT / "pyproject.toml").read_text(encoding="utf-8"))
        project = project["project"]
        reqs = [(r, "") for r in project["dependencies"]]
        reqs += [(r, "gpu") for r in project.get("optional-dependencies", {}).get("gpu", [])]
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        try:
            for r in importlib.metadata.requires("xling") or []:
                if "extra ==" not in r:
                    reqs.append((r.split(";")[0], ""))
                elif "gpu" in r.split(";", 1)[1]:
                    reqs.append((r.split(";")[0], "gpu"))
        except importlib.metadata.PackageNotFoundError:
            pass
    out = []
    for req, extra in reqs:
        m = _REQUIREMENT.match(req)
        if m:
            out.append((m[1], m[2] or "", extra))
    return out


def package_versions() -> list[dict[str, str]]:
    """Each pinned package with its pin, its extra ('' or 'gpu') and the version installed here
    ('' when absent)."""
    rows = []
    for name, pinned, extra in pinned_packages():
        try:
            installed = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            installed = ""
        rows.append({"name": name, "pinned": pinned, "extra": extra, "installed": installed})
    return rows


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, or what :mod:`platform` knows."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
        for line in text.splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Model", "Hardware") and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def total_memory() -> int | None:
    """Physical memory in bytes, or None where the system does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def gpu_description() -> str:
    """The CUDA GPUs torch sees; torch is imported here only, and may be absent."""
    try:
        import torch
    except ImportError:
        return "none known (torch is not installed)"
    try:
        if not torch.cuda.is_available():
            return "none (torch sees no CUDA device)"
        gpus = []
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            gpus.append(f"{props.name} ({props.total_memory / 2**30:.0f} GiB)")
        return ", ".join(gpus) + f"; CUDA {torch.version.cuda}"
    except Exception as err:  # noqa: BLE001 - a broken driver must not stop the report
        return f"unknown ({type(err).__name__}: {err})"


def hardware() -> dict[str, str]:
    """CPU, cores, memory, Python, platform and GPU of this machine, as display strings."""
    cores = os.cpu_count() or 0
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = cores
    memory = total_memory()
    return {
        "CPU": cpu_model(),
        "cores": f"{cores}" + (f" ({usable} usable by this process)" if usable != cores else ""),
        "memory": f"{memory / 2**30:.1f} GiB" if memory else "unknown",
        "Python": f"{platform.python_version()} ({sys.executable})",
        "platform": platform.platform(),
        "GPU": gpu_description(),
    }


def code_version() -> str:
    """The git commit of the checkout, marked when files differ from it; '' outside git."""
    try:
        git = ["git", "-C", str(paths.ROOT)]
        head = subprocess.run(
            [*git, "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True, timeout=20
        )
        if head.returncode != 0:
            return ""
        dirty = subprocess.run(
            [*git, "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=20,
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    changed = " with uncommitted changes" if dirty.stdout.strip() else ""
    return f"git commit {head.stdout.strip()}{changed}"


_REQUIREMENT = re.compile(
    r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*(?:==\s*([^;,\s]+))?"
)
