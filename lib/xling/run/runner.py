"""Run a profile's notebooks in order with papermill (the engine behind ``./run_all.sh``).

Each notebook gets its parameters from params/<profile>.yaml (checked by :mod:`xling.config`) and
``-p`` overrides, and its executed copy goes to runs/<profile>/notebooks/. A notebook whose
parameters, code and inputs are unchanged since it last completed is skipped (unless ``--force``);
one whose inputs the profile lacks is reported as skipped with the reason; a failing notebook stops
the run, keeps its executed copy and prints the failing cell and the error. Every run ends by
writing runs/<profile>/report.html (:mod:`xling.run.report`), a failed run included.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import yaml

from xling import artifacts, config, paths
from xling.run.fingerprint import fingerprint
from xling.run.requirements import missing_requirement, notebook_meta, task_unsupported
from xling.run.state import Outcome, claim_run, failing_cell, read_state, write_state

KERNEL = "xling"


@contextmanager
def writing_as(notebook: str):
    """Tell the kernel (it inherits the environment) which notebook it runs, so the save helpers
    refuse a file whose writer is another notebook; cleared afterwards, failure or not."""
    os.environ[artifacts.NOTEBOOK_ENV] = notebook
    try:
        yield
    finally:
        os.environ.pop(artifacts.NOTEBOOK_ENV, None)


def quiet_kernel_manager():
    """The kernel manager papermill starts each notebook's kernel with: jupyter_client's own,
    less two lines of noise the kernel prints into run_all.sh's output that tell the user
    nothing (the kernel's other messages, and its stderr, still come through):

    - "Kernel is running over TCP without encryption": the kernel's channels are encrypted
      instead (CurveZMQ keys provisioned by the manager, ``transport_encryption="auto"``; the
      kernelspec declares support), where pyzmq has CurveZMQ; elsewhere the warning is true and
      stays;
    - "KeyboardInterrupt caught in kernel": jupyter_client interrupts a kernel before asking it
      to shut down; a notebook that finished leaves an idle kernel, which needs no interrupt
      (a kernel that does not stop after the shutdown request is still killed)."""
    import zmq
    from jupyter_client import AsyncKernelManager
    from traitlets import default

    encrypt = zmq.has("curve") and "transport_encryption" in AsyncKernelManager.class_trait_names()

    class QuietKernelManager(AsyncKernelManager):
        @default("transport_encryption")
        def _encrypt_where_possible(self) -> str:
            return "auto" if encrypt else "disabled"

        async def _async_interrupt_kernel(self) -> None:
            if self.shutting_down:
                return
            await super()._async_interrupt_kernel()

    return QuietKernelManager


def select(notebooks: dict[str, Path], only: list[str] | None, flag: str = "--only") -> list[str]:
    """Notebook stems to run: all, or those named by ``--only`` (``00_data``, ``00``, ``data``);
    ``flag`` names the option in the error for a name that matches none."""
    if not only:
        return list(notebooks)
    chosen = []
    for name in only:
        hits = [nb for nb in notebooks if name in (nb, nb[:2], nb[3:])]
        if not hits:
            raise config.ConfigError(f"{flag} {name}: no such notebook ({', '.join(notebooks)})")
        chosen += [h for h in hits if h not in chosen]
    return [nb for nb in notebooks if nb in chosen]


#: ``-p`` keys whose values are files a user names on the command line.
_FILE_KEYS = ("posts_path", "eval_files")


def caller_paths(key: str, raw: str, caller: Path) -> tuple[str, str]:
    """A ``-p`` file path as the user meant it: a relative path that exists from the folder
    ``run_all.sh`` was called in is made absolute from there (profiles' own paths, and ones that
    exist only from the repository root, stay as they are, taken from the root)."""
    name = key.split(".", 1)[-1]
    if name not in _FILE_KEYS:
        return key, raw
    value = yaml.safe_load(raw) if raw != "" else ""

    def fix(path):
        if not isinstance(path, str) or Path(path).expanduser().is_absolute():
            return path
        here = (caller / path).resolve()
        return str(here) if here.exists() else path

    if isinstance(value, dict):
        value = {k: fix(v) for k, v in value.items()}
    else:
        value = fix(value)
    return key, json.dumps(value)


def run_profile(
    profile: str,
    only: list[str] | None = None,
    force: bool = False,
    overrides: list[tuple[str, str]] | None = None,
    log=print,
    run: str | None = None,
) -> list[Outcome]:
    """Execute the profile's notebooks in order; return what happened to each. ``run`` names the
    run apart from the profile: its files go to runs/<run>/ and figures/<run>/ (default: the
    profile's name), so a user's own data never replaces the demo's results."""
    import papermill as pm

    prof = config.load_profile(profile, overrides, run=run)
    profile_name, profile = profile, prof.run  # below, `profile` is the run's folder name
    notebooks = config.notebook_paths()
    chosen = select(notebooks, only)
    problems = [why for nb in chosen if (why := prof.variant_problem(nb))]
    if problems:
        raise config.ConfigError(f"{paths.display(prof.file)}: " + "; ".join(problems))
    claim_run(profile, profile_name, force)
    out_dir = paths.executed_notebooks(profile)
    state = read_state(profile)
    outcomes: list[Outcome] = []
    upstream: list[str] = []
    named = f" as run {profile}" if profile != profile_name else ""
    log(f"profile {profile_name} ({paths.display(prof.file)}){named} -> {paths.display(out_dir)}")
    for line in prof.notes:
        log(f"  {line}")
    if prof.rehearses:
        from xling.run.rehearsal import skipped_lines

        log(f"a rehearsal of profile {prof.rehearses}: its code path on this machine, smaller")
        for line in skipped_lines(prof):
            log(f"  {line}")
    for nb in notebooks:
        nb_path = notebooks[nb]
        params = prof.params_for(nb)
        fp = fingerprint(nb_path, params, upstream)
        upstream.append(fp)
        if nb not in chosen:
            continue
        reason = task_unsupported(prof.common.get("task"), prof.schema[nb])
        reason = reason or missing_requirement(
            notebook_meta(nb_path).get("requires", []), params, profile
        )
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
            with writing_as(nb):
                pm.execute_notebook(
                    str(nb_path),
                    str(out_nb),
                    parameters=params,
                    kernel_name=KERNEL,
                    cwd=str(paths.ROOT),
                    progress_bar=False,
                    log_output=False,
                    kernel_manager_class=quiet_kernel_manager(),
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
                log(f"  executed copy kept: {paths.display(out_nb)}")
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
    """Write runs/<profile>/report.html (:mod:`xling.run.report`) and log where. A failure here is
    logged as a warning and otherwise ignored: the notebooks' own results stand without it."""
    try:
        from xling.run import report  # the report reads state, never the runner

        path = report.write_report(profile, outcomes)
    except Exception as err:  # noqa: BLE001 - the report must never hide the run's outcome
        log(
            f"warning: the run report could not be written ({type(err).__name__}: {err}); "
            f"the notebooks' results above stand; rebuild it with "
            f"python -m xling.run.report --profile {profile}"
        )
        return None
    log(f"report: {paths.display(path)}")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="run_all.sh", description="Run the xling notebooks of a profile with papermill."
    )
    parser.add_argument("--profile", default="demo", help="params/NAME.yaml (default: demo)")
    parser.add_argument(
        "--run",
        metavar="NAME",
        help="name the run apart from the profile: runs/NAME/ and figures/NAME/ (default: the "
        "profile's name)",
    )
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
    caller = Path(os.environ.get("XLING_CALLER_CWD", os.getcwd()))
    overrides = [caller_paths(k, v, caller) for k, v in args.p]
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
        outcomes = run_profile(args.profile, args.only, args.force, overrides, run=args.run)
    except config.ConfigError as err:
        print(f"run_all.sh: {err}", file=sys.stderr)
        return 2
    return 1 if any(o.status == "failed" for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
