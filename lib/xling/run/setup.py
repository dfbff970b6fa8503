"""Set-up helpers run by ``run_all.sh --setup``: llama.cpp's GGUF converter, taken from the pinned
llama-cpp-python source distribution (it is in no wheel).

    python -m xling.run.setup          # install the converter (idempotent)

"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import sys
import tarfile
import urllib.request
from pathlib import Path

from xling.models.quantize import converter_dir, llama_cpp_version

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
    force = "--force" in (sys.argv[1:] if argv is None else argv)
    print(install_converter(force=force))
    return 0


if __name__ == "__main__":
    sys.exit(main())
