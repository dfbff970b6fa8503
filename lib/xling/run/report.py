"""The run report: runs/<profile>/report.html, one self-contained page that opens with no server.

Written by ``run_all.sh`` at the end of every run (:func:`xling.run.runner.run_profile`), failed
runs included, and rebuilt by hand with ``python -m xling.run.report --profile NAME``. It holds the
profile, each notebook's parameters, status and timing (from runs/<profile>/notebooks/state.json),
links to the executed notebooks, package versions, the hardware, and per notebook the tables and
figures it produced. Those come from the run's manifest (runs/<profile>/manifest.json, written by
the save helpers of :mod:`xling.artifacts`): every file a notebook wrote, whether it printed it or
not. PNG figures are embedded as data URIs (their PDF twins are left out), CSV tables are shown as
HTML tables (the first rows).

The page carries a tiny script that, once loaded, counts the images that decoded and those that did
not (``data-images-ok`` / ``data-images-broken`` on ``<body>``): the browser test reads them.
"""

from __future__ import annotations

import argparse
import base64
import csv
import html
import json
import math
import os
import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from xling import artifacts, config, paths
from xling.run import state as run_state
from xling.run.machine import code_version, hardware, package_versions

#: Rows of a CSV shown in the report (the full file is linked).
TABLE_ROWS = 30


#: Characters of a table cell shown in the report (posts and model outputs can be long).
CELL_CHARS = 200


#: Characters of a text file shown in the report.
TEXT_CHARS = 20_000


#: ``saved runs/demo/x.csv`` or ``saved runs/demo/x.csv (436 rows)``: the path, without the note.


_INT = re.compile(r"[+-]?\d+")


def report_path(profile: str) -> Path:
    """Where a profile's report goes: runs/<profile>/report.html."""
    return paths.RUNS / profile / "report.html"


def format_cell(text: str) -> str:
    """A CSV cell for display: numbers rounded to 3 decimals (integers and text as they are);
    a non-zero number that would round to 0 keeps 3 significant digits (p-values)."""
    s = text.strip()
    if not s or _INT.fullmatch(s):
        return text
    try:
        x = float(s)
    except ValueError:
        return text
    if not math.isfinite(x):
        return s
    if x != 0 and abs(x) < 0.0005:
        return f"{x:.3g}"
    out = f"{x:.3f}".rstrip("0").rstrip(".")
    return "0" if out == "-0" else out


def _cut(text: str, limit: int = CELL_CHARS) -> str:
    """A long cell (a post's text, a model's output) cut to ``limit`` characters."""
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def read_table(path: Path, max_rows: int = TABLE_ROWS) -> dict[str, Any]:
    """A CSV (or TSV) file's header, its first ``max_rows`` rows formatted, and its row count."""
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.reader(f, delimiter=delimiter)
        columns = next(reader, [])
        rows, n_rows = [], 0
        for row in reader:
            n_rows += 1
            if n_rows <= max_rows:
                rows.append([_cut(format_cell(cell)) for cell in row])
    return {"columns": columns, "rows": rows, "n_rows": n_rows}


def output_item(rel: str, report_dir: Path, path: Path | None = None) -> dict[str, Any]:
    """What the report shows for one saved file: a figure, a table, a text, a plain link, or a
    note that it is missing (or unreadable). ``path`` is where the file is (``rel`` resolved
    from the repository root when not given)."""
    path = paths.resolve(rel) if path is None else path
    item: dict[str, Any] = {
        "path": rel,
        "name": path.name,
        "href": Path(os.path.relpath(path, report_dir)).as_posix(),
    }
    if path.is_dir():
        files = [f for f in path.rglob("*") if f.is_file()]
        return {**item, "kind": "file", "size": sum(f.stat().st_size for f in files)}
    if not path.is_file():
        return {**item, "kind": "missing"}
    suffix = path.suffix.lower()
    try:
        if suffix == ".png":
            data = base64.b64encode(path.read_bytes()).decode("ascii")
            return {**item, "kind": "figure", "data": data}
        if suffix in (".csv", ".tsv"):
            return {**item, "kind": "table", **read_table(path)}
        if suffix in (".txt", ".md"):
            text = path.read_text(encoding="utf-8", errors="replace")
            return {
                **item,
                "kind": "text",
                "text": text[:TEXT_CHARS],
                "cut": len(text) > TEXT_CHARS,
            }
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        return {**item, "kind": "unreadable", "error": f"{type(err).__name__}: {err}"}
    return {**item, "kind": "file", "size": path.stat().st_size}


def manifest_path(key: str) -> Path:
    """Where a manifest entry (``runs/RUN/rel`` or ``figures/RUN/rel``) is on disk."""
    kind, _, rest = key.partition("/")
    return (paths.FIGURES if kind == "figures" else paths.RUNS) / rest


def notebook_outputs(profile: str, notebook: str, report_dir: Path) -> list[dict[str, Any]]:
    """The report items for every file a notebook wrote, from the run's manifest, in the order
    written; a PDF whose PNG twin was written too is left out."""
    written = artifacts.files_by_writer(profile).get(notebook, [])
    keys = [key for key, _ in written]
    pngs = {key[: -len(".png")] for key in keys if key.lower().endswith(".png")}
    return [
        output_item(key, report_dir, manifest_path(key))
        for key in keys
        if not (key.lower().endswith(".pdf") and key[: -len(".pdf")] in pngs)
    ]


#: A run's outcome (run_state.Outcome.status) as the report shows it: (status, note).
_OUTCOME = {
    "ran": ("ok", "ran in this run"),
    "up-to-date": ("ok", "up to date: not re-run"),
    "failed": ("failed", ""),
    "skipped": ("skipped", ""),
}


def notebook_status(record: dict[str, Any], outcome: run_state.Outcome | None) -> tuple[str, str]:
    """(status, note) of one notebook: this run's outcome when it took part, else state.json's
    record (``ok``, ``failed``, ``interrupted``: started and never finished, ``not run``)."""
    if outcome is not None and outcome.status in _OUTCOME:
        status, note = _OUTCOME[outcome.status]
        if status == "skipped":
            return status, outcome.reason
        if status == "failed":
            return status, record.get("error") or outcome.reason
        return status, note
    recorded = record.get("status")
    if recorded == "ok":
        return "ok", ""
    if recorded == "failed":
        return "failed", record.get("error", "")
    if recorded == "running":
        return "interrupted", "started but never finished (the run was stopped, or is running)"
    return "not run", "no record in state.json (not run for this profile, or skipped)"


def collect(profile: str, outcomes: list[run_state.Outcome] | None = None) -> dict[str, Any]:
    """Everything the report shows, as plain data: the profile, each notebook (status, timing,
    share of the run, parameters, outputs), package versions and hardware.

    ``outcomes`` (from :func:`xling.run.runner.run_profile`) says what happened in the run that just
    ended, which state.json does not record for skipped notebooks.
    """
    report_dir = paths.RUNS / profile
    nb_dir = report_dir / "notebooks"
    state = run_state.read_state(profile) if nb_dir.is_dir() else {}
    by_name = {o.notebook: o for o in outcomes or []}
    stopped_at = next((o.notebook for o in outcomes or [] if o.status == "failed"), None)
    names = sorted(set(config.notebook_paths()) | set(state) | set(by_name))
    notebooks = []
    for name in names:
        record = state.get(name, {})
        status, note = notebook_status(record, by_name.get(name))
        if outcomes is not None and name not in by_name and status == "ok":
            # shown, but said to be older than this run (--only, or the run stopped before it)
            note = (
                f"not reached: this run stopped at {stopped_at}; this is an earlier run's result"
                if stopped_at and name > stopped_at
                else "not part of this run; this is an earlier run's result"
            )
        seconds = record.get("seconds") if status in ("ok", "failed") else None
        executed = nb_dir / f"{name}.ipynb"
        entry: dict[str, Any] = {
            "name": name,
            "status": status,
            "note": note,
            "seconds": seconds,
            "finished": record.get("finished", ""),
            "params": record.get("params", {}),
            "href": f"notebooks/{name}.ipynb" if executed.is_file() else "",
            "outputs": [],
        }
        if status == "ok":
            try:
                entry["outputs"] = notebook_outputs(profile, name, report_dir)
            except (OSError, ValueError) as err:
                entry["note"] = f"outputs not readable: {type(err).__name__}: {err}"
        notebooks.append(entry)
    total = sum(nb["seconds"] or 0.0 for nb in notebooks)
    for nb in notebooks:
        nb["share"] = nb["seconds"] / total if nb["seconds"] is not None and total else None
    claims_csv = report_dir / "claims" / "claims.csv"
    return {
        "claims": read_table(claims_csv, max_rows=200) if claims_csv.is_file() else None,
        "profile": run_state.run_profile_name(profile),
        "run": profile,
        "generated": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "code": code_version(),
        "total_seconds": total,
        "common_params": common_params([nb["params"] for nb in notebooks if nb["params"]]),
        "notebooks": notebooks,
        "packages": package_versions(),
        "hardware": hardware(),
    }


def common_params(blocks: list[dict[str, Any]]) -> dict[str, Any]:
    """Parameters every notebook got with the same value (shown once); {} for fewer than two."""
    if len(blocks) < 2:
        return {}
    first = blocks[0]
    return {k: v for k, v in first.items() if all(k in b and b[k] == v for b in blocks[1:])}


_CSS = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 72em; padding: 0 1em;
       color: #222; }
h1 { margin-bottom: .2em; } h1 code { font-size: inherit; }
h2 { border-bottom: 1px solid #ccc; margin-top: 2em; }
table { border-collapse: collapse; margin: .5em 0; font-size: 13px; }
th, td { border: 1px solid #ddd; padding: 2px 6px; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.scroll { overflow-x: auto; } .muted { color: #666; } code, pre { font-size: 13px; }
pre { background: #f7f7f7; padding: .6em; overflow-x: auto; white-space: pre-wrap; }
.ok { color: #1a7f37; } .failed, .missing, .mismatch { color: #c62828; }
.skipped, .interrupted, .not-run { color: #9a6700; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: 13px; color: #555; }
"""


#: Counts the images that decoded and those that did not, for the browser test.
_SCRIPT = """
window.addEventListener("load", function () {
  var ok = 0, broken = 0;
  for (var i = 0; i < document.images.length; i++) {
    var img = document.images[i];
    if (img.complete && img.naturalWidth > 0) { ok++; } else { broken++; }
  }
  document.body.setAttribute("data-images-ok", String(ok));
  document.body.setAttribute("data-images-broken", String(broken));
});
"""


_NUMERIC = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?%?")


def esc(value: Any) -> str:
    """Text for HTML, every special character escaped (quotes included)."""
    return html.escape(str(value), quote=True)


def fmt_seconds(seconds: float | None) -> str:
    """``12.3 s``, with minutes added from a minute on."""
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{seconds:.1f} s ({minutes} min {rest:02d} s)"


def fmt_value(value: Any) -> str:
    """A parameter value as the profile would write it (JSON for lists and mappings)."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def html_table(columns: list[str], rows: list[list[str]]) -> str:
    """An HTML table of already formatted cells; numeric cells are right-aligned."""
    head = "".join(f"<th>{esc(c)}</th>" for c in columns)
    body = []
    for row in rows:
        cells = "".join(
            f'<td class="num">{esc(c)}</td>'
            if _NUMERIC.fullmatch(c.strip())
            else f"<td>{esc(c)}</td>"
            for c in row
        )
        body.append(f"<tr>{cells}</tr>")
    return f'<div class="scroll"><table><tr>{head}</tr>{"".join(body)}</table></div>'


def params_table(params: dict[str, Any]) -> str:
    """A two-column table of parameters."""
    if not params:
        return '<p class="muted">none</p>'
    return html_table(["parameter", "value"], [[k, fmt_value(v)] for k, v in params.items()])


def render_output(item: dict[str, Any]) -> str:
    """One saved file as HTML: an embedded figure, a table, a text, a link, or a missing note."""
    kind, path, href = item["kind"], esc(item["path"]), esc(item["href"])
    if kind == "figure":
        return (
            f'<figure><img src="data:image/png;base64,{item["data"]}" alt="{esc(item["name"])}">'
            f'<figcaption><a href="{href}">{path}</a></figcaption></figure>'
        )
    if kind == "table":
        n = item["n_rows"]
        shown = len(item["rows"])
        count = f"{n} rows" + (f", the first {shown} shown" if shown < n else "")
        return (
            f'<h4><a href="{href}">{path}</a> <span class="muted">({count})</span></h4>'
            + html_table(item["columns"], item["rows"])
        )
    if kind == "text":
        cut = ' <span class="muted">(cut short)</span>' if item["cut"] else ""
        return f'<h4><a href="{href}">{path}</a>{cut}</h4><pre>{esc(item["text"])}</pre>'
    if kind == "missing":
        return f'<p class="missing">missing: {path} (saved by the notebook, no longer on disk)</p>'
    if kind == "unreadable":
        return f'<p class="missing">unreadable: {path} ({esc(item["error"])})</p>'
    return f'<p><a href="{href}">{path}</a> <span class="muted">({item["size"]:,} bytes)</span></p>'


def render_notebook(nb: dict[str, Any], common: dict[str, Any]) -> str:
    """A notebook's section: status, timing, own parameters, then its outputs (or why none)."""
    status = nb["status"]
    title = esc(nb["name"])
    if nb["href"]:
        title = f'<a href="{esc(nb["href"])}">{title}</a>'
    parts = [f'<h2 id="nb-{esc(nb["name"])}">{title}</h2>']
    line = f'<span class="{status.replace(" ", "-")}">{esc(status)}</span>'
    if nb["seconds"] is not None:
        line += f", {esc(fmt_seconds(nb['seconds']))}"
    if nb["finished"] and status == "ok":
        line += f", finished {esc(nb['finished'])}"
    parts.append(f"<p>{line}</p>")
    if status in ("failed", "skipped", "interrupted") and nb["note"]:
        parts.append(f'<pre class="{status}">{esc(nb["note"])}</pre>')
    elif nb["note"]:
        parts.append(f'<p class="muted">{esc(nb["note"])}</p>')
    own = {k: v for k, v in nb["params"].items() if k not in common or common[k] != v}
    if nb["params"]:
        label = "parameters (besides the common ones)" if common else "parameters"
        parts.append(f"<h3>{label}</h3>{params_table(own)}")
    if status == "ok":
        if nb["outputs"]:
            parts.append("<h3>outputs</h3>")
            parts.extend(render_output(item) for item in nb["outputs"])
        else:
            why = nb["note"] if nb["note"].startswith("outputs not") else "none printed as 'saved'"
            parts.append(f'<p class="muted">outputs: {esc(why)}</p>')
    return "\n".join(parts)


def render(report: dict[str, Any]) -> str:
    """The whole report as one self-contained HTML page."""
    profile = esc(report["profile"])
    summary_rows = []
    for nb in report["notebooks"]:
        name = esc(nb["name"])
        link = f' (<a href="{esc(nb["href"])}">executed notebook</a>)' if nb["href"] else ""
        share = f"{nb['share']:.0%}" if nb["share"] is not None else ""
        summary_rows.append(
            f'<tr><td><a href="#nb-{name}">{name}</a>{link}</td>'
            f'<td class="{esc(nb["status"].replace(" ", "-"))}">{esc(nb["status"])}</td>'
            f'<td class="num">{esc(fmt_seconds(nb["seconds"]))}</td><td class="num">{share}</td>'
            f"<td>{esc(nb['note'])}</td></tr>"
        )
    packages = []
    for p in report["packages"]:
        base = p["installed"].split("+")[0]  # torch's local tag: 2.13.0+cpu
        if not p["installed"] and p["extra"]:
            cls, installed = ' class="muted"', f"not installed (optional: [{p['extra']}])"
        else:
            mismatch = p["pinned"] and base != p["pinned"]
            cls = ' class="mismatch"' if mismatch else ""
            installed = p["installed"] or "not installed"
        packages.append(
            f"<tr><td>{esc(p['name'])}</td><td>{esc(p['pinned'])}</td>"
            f"<td{cls}>{esc(installed)}</td></tr>"
        )
    hw = "".join(
        f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in report["hardware"].items()
    )
    code = f", {esc(report['code'])}" if report["code"] else ""
    common = report["common_params"]
    body = [
        f"<h1>xling run report: run <code>{esc(report.get('run', report['profile']))}</code>, "
        f"profile <code>{profile}</code></h1>",
        f'<p class="muted">generated {esc(report["generated"])}{code}; '
        f"notebooks took {esc(fmt_seconds(report['total_seconds']))} in all "
        f"(as recorded in notebooks/state.json)</p>",
    ]
    claims = report.get("claims")
    if claims:
        keep = ["claim", "test", "split", "estimate", "ci_low", "ci_high", "p_value", "verdict"]
        idx = [claims["columns"].index(k) for k in keep if k in claims["columns"]]
        body += [
            '<h2 id="claims">Claims and verdicts (08_claims)</h2>',
            html_table(
                [claims["columns"][i] for i in idx],
                [[row[i] for i in idx] for row in claims["rows"]],
            ),
        ]
    body += [
        "<h2>Notebooks</h2>",
        '<div class="scroll"><table><tr><th>notebook</th><th>status</th><th>time</th>'
        "<th>share</th><th>note</th></tr>" + "".join(summary_rows) + "</table></div>",
    ]
    if common:
        body += ["<h2>Common parameters</h2>", params_table(common)]
    body += [render_notebook(nb, common) for nb in report["notebooks"]]
    body += [
        "<h2>Environment</h2>",
        "<h3>packages</h3>",
        "<table><tr><th>package</th><th>pinned</th><th>installed</th></tr>"
        + "".join(packages)
        + "</table>",
        f"<h3>hardware</h3><table>{hw}</table>",
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>xling report: {profile}</title>\n<style>{_CSS}</style>\n"
        f"<script>{_SCRIPT}</script>\n</head>\n<body>\n" + "\n".join(body) + "\n</body>\n</html>\n"
    )


def write_report(profile: str, outcomes: list[run_state.Outcome] | None = None) -> Path:
    """Build and write runs/<profile>/report.html atomically (temporary file, then rename)."""
    out = report_path(profile)
    out.parent.mkdir(parents=True, exist_ok=True)
    page = render(collect(profile, outcomes))
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(page, encoding="utf-8")
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m xling.run.report",
        description="Rebuild runs/NAME/report.html from a profile's executed notebooks.",
    )
    parser.add_argument("--profile", default="demo", help="the profile's run (default: demo)")
    args = parser.parse_args(argv)
    if not (paths.RUNS / args.profile / "notebooks").is_dir():
        print(
            f"xling.report: no run of profile '{args.profile}' at {paths.RUNS / args.profile} "
            f"(run ./run_all.sh --profile {args.profile} first)",
            file=sys.stderr,
        )
        return 2
    path = write_report(args.profile)
    print(f"report: {paths.display(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
