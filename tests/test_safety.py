"""Offline and safe (issue 11): importing xling switches the Hugging Face libraries offline;
the library loads safetensors only, never runs a model's remote code, never unpickles weights,
and reaches the network only in the set-up step that fetches llama.cpp's converter."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys

from xling import config, paths

OFFLINE = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")


def _python(code: str, **env: str) -> dict:
    clean = {k: v for k, v in os.environ.items() if k not in (*OFFLINE, "HF_HUB_DISABLE_TELEMETRY")}
    res = subprocess.run(
        [sys.executable, "-c", code],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_importing_xling_switches_hugging_face_offline():
    names = [*OFFLINE, "HF_HUB_DISABLE_TELEMETRY"]
    code = f"import json, os; import xling; print(json.dumps([os.environ.get(k) for k in {names}]))"
    assert _python(code) == ["1"] * len(names)


def test_offline_even_when_the_hub_was_imported_first():
    # isort puts transformers (and so huggingface_hub) before xling in a notebook's imports;
    # the hub reads HF_HUB_OFFLINE once, at import
    code = (
        "import json; from huggingface_hub import constants; import xling; "
        "print(json.dumps({'offline': constants.is_offline_mode()}))"
    )
    assert _python(code) == {"offline": True}
    # a user's explicit choice is kept
    code = "import json, os; import xling; print(json.dumps(os.environ['HF_HUB_OFFLINE']))"
    assert _python(code, HF_HUB_OFFLINE="0") == "0"


def _sources() -> dict[str, ast.Module]:
    """The library's modules and the notebooks' code cells, parsed."""
    out = {
        str(p.relative_to(paths.ROOT)): ast.parse(p.read_text()) for p in paths.LIB.rglob("*.py")
    }
    for nb, path in config.notebook_paths().items():
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        out[f"notebooks/{nb}.ipynb"] = ast.parse(code)
    return out


def _calls(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            yield node, ast.unparse(node.func), {k.arg: k.value for k in node.keywords}


def _is(value: ast.expr | None, constant) -> bool:
    return isinstance(value, ast.Constant) and value.value is constant


def _imports(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if isinstance(node, ast.ImportFrom):
        return [node.module or ""]
    return []


def _unsafe(name: str, tree: ast.AST) -> list[str]:
    """Remote code, pickled weights, or a model loaded without insisting on safetensors."""
    problems = []
    for node in ast.walk(tree):
        if any(
            m.split(".")[0] in ("pickle", "dill", "joblib", "cloudpickle") for m in _imports(node)
        ):
            problems.append(f"{name}:{node.lineno}: imports a pickle library")
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if node.value.endswith(("pytorch_model.bin", "adapter_model.bin")):
                problems.append(f"{name}:{node.lineno}: names a pickled weights file")
    for node, func, kw in _calls(tree):
        where = f"{name}:{node.lineno}: {func}"
        if _is(kw.get("trust_remote_code"), True):
            problems.append(f"{where}: trust_remote_code=True")
        for key in ("use_safetensors", "safe_serialization"):
            if _is(kw.get(key), False):
                problems.append(f"{where}: {key}=False")
        if func.endswith("torch.load") and not _is(kw.get("weights_only"), True):
            problems.append(f"{where}: torch.load without weights_only=True")
        if func.startswith("AutoModel") and func.endswith(".from_pretrained"):
            # safetensors, or a GGUF file, or **kwargs built with use_safetensors=True
            safe = _is(kw.get("use_safetensors"), True) or "gguf_file" in kw
            if None in kw and not safe:
                safe = "use_safetensors=True" in ast.unparse(tree)
            if not safe:
                problems.append(f"{where}: from_pretrained without use_safetensors=True")
    return problems


NETWORK = ("urllib", "requests", "http", "httpx", "aiohttp", "socket", "ftplib", "smtplib")
#: The one module allowed to reach the network: its set-up step fetches llama.cpp's converter.
SETUP_MODULE = "lib/xling/run/setup.py"


def _network(name: str, tree: ast.AST) -> list[str]:
    """Network modules outside the set-up module; hub look-ups that may download."""
    problems = []
    for node in ast.walk(tree):
        if name != SETUP_MODULE and any(m.split(".")[0] in NETWORK for m in _imports(node)):
            problems.append(f"{name}:{node.lineno}: imports a network module")
    for node, func, kw in _calls(tree):
        download = func.split(".")[-1] in ("snapshot_download", "hf_hub_download")
        if download and not _is(kw.get("local_files_only"), True):
            problems.append(f"{name}:{node.lineno}: {func} may download")
        if func.endswith(("install_converter", "_sdist_url")) and name != SETUP_MODULE:
            problems.append(f"{name}:{node.lineno}: calls the set-up download")
    return problems


def test_no_remote_code_no_pickled_weights():
    problems = [p for name, tree in _sources().items() for p in _unsafe(name, tree)]
    assert not problems, "\n".join(problems)


def test_nothing_is_sent_anywhere():
    """Network modules appear only in xling.run.setup, whose set-up steps (``python -m
    xling.run.setup``, run by ./run_all.sh's set-up) fetch llama.cpp's converter from PyPI and
    ask whether PyTorch's CPU index answers (one HEAD request, to pick the torch build);
    nothing else reaches it, and hub look-ups are local only."""
    sources = _sources()
    problems = [p for name, tree in sources.items() for p in _network(name, tree)]
    assert not problems, "\n".join(problems)
    functions = [f for f in ast.walk(sources[SETUP_MODULE]) if isinstance(f, ast.FunctionDef)]
    fetching = {f.name for f in functions if any(c.endswith("urlopen") for _, c, _ in _calls(f))}
    assert fetching == {"_sdist_url", "install_converter", "index_reachable"}
    # and only install_converter itself, or the module's command line (main), starts the fetch
    callers = {
        f.name
        for f in functions
        if any(c in ("install_converter", "_sdist_url") for _, c, _ in _calls(f))
    }
    assert callers == {"install_converter", "main"}


def test_the_scans_see_what_they_look_for():
    """Planted violations are found, so the scans passing above means something."""
    planted = ast.parse(
        "import pickle, requests\n"
        "from huggingface_hub import snapshot_download\n"
        "m = AutoModelForCausalLM.from_pretrained('x', trust_remote_code=True)\n"
        "s = torch.load('state.pt', weights_only=False)\n"
        "w = torch.load('pytorch_model.bin')\n"
        "snapshot_download('org/model')\n"
    )
    unsafe = _unsafe("planted.py", planted)
    assert len(unsafe) == 6, unsafe  # pickle, .bin, remote code, from_pretrained, 2 torch.load
    assert len(_network("planted.py", planted)) == 2  # requests, snapshot_download
