"""What decides that a notebook must run again: its fingerprint, and the library code it uses.

A notebook's fingerprint covers its cells, its parameters, its input files, the fingerprints of
the notebooks before it, and the library modules it uses: those its code imports, resolved to
the module that defines each name it takes from a package (``plots.plot_loss_curves`` is
``xling/plots/finetune.py``, not every plot), and everything those modules import in turn. The
run plumbing (``xling.run``), the benchmarks and other notebooks' figures are not in it, so
editing the report or a benchmark re-runs nothing.

The same source reader gives the package's import graph, which the architecture test checks for
upward imports and cycles.
"""

from __future__ import annotations

import ast
import hashlib
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from xling import paths
from xling.data.tables import fingerprint_files
from xling.run.requirements import posts_source_path
from xling.tasks import DEFAULT_TASK, TaskError, task_file


def _module_name(lib: Path, file: Path) -> str:
    rel = file.relative_to(lib.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def module_files(lib: Path) -> dict[str, Path]:
    """Every module of the package under ``lib`` (the ``xling`` folder), by dotted name."""
    lib = Path(lib)
    return {_module_name(lib, f): f for f in sorted(lib.rglob("*.py"))}


def _defined_names(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


def _aliases(tree: ast.Module, name: str = "_ALIASES") -> dict[str, str]:
    """A map the root package assigns by name: its short names for modules (``_ALIASES =
    {"metrics": "xling.analysis.metrics"}``) or its functions' modules (``_FUNCTIONS``)."""
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else []
        if any(isinstance(t, ast.Name) and t.id == name for t in targets):
            return ast.literal_eval(node.value)
    return {}


class _Index:
    """Modules of the package, what each defines, and what each package re-exports from where."""

    def __init__(self, lib: Path):
        self.files = module_files(lib)
        self.trees = {m: ast.parse(f.read_text(encoding="utf-8")) for m, f in self.files.items()}
        self.defined = {m: _defined_names(t) for m, t in self.trees.items()}
        self.aliases = _aliases(self.trees["xling"]) if "xling" in self.trees else {}
        self.reexports: dict[str, dict[str, str]] = {}
        # packages deepest first, so a package re-exporting another's names finds them resolved
        inits = [m for m, f in self.files.items() if f.name == "__init__.py"]
        for m in sorted(inits, key=lambda m: -m.count(".")):
            names = {}
            for node in self.trees[m].body:
                if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    for a in node.names:
                        names[a.asname or a.name] = self.resolve(node.module, a.name)
            self.reexports[m] = names
        # functions the root loads lazily (xling.playground): defined by the named module
        if "xling" in self.trees:
            functions = _aliases(self.trees["xling"], "_FUNCTIONS")
            self.reexports.setdefault("xling", {}).update(
                {n: mod for n, mod in functions.items() if mod in self.files}
            )

    def module(self, name: str) -> str | None:
        """A dotted name as a module of the package (following the root's aliases), or None."""
        if name in self.files:
            return name
        head, _, rest = name.partition(".")
        if head == "xling" and rest:
            first, _, more = rest.partition(".")
            if first in self.aliases:
                target = self.aliases[first] + (f".{more}" if more else "")
                return target if target in self.files else None
        return None

    def resolve(self, module: str, name: str) -> str:
        """The module that ``from module import name`` really reads: a submodule, the module
        that defines the name, or the re-exporting package's source of it."""
        mod = self.module(module) or module
        sub = self.module(f"{mod}.{name}")
        if sub is not None:
            return sub
        if name in self.defined.get(mod, set()):
            return mod
        return self.reexports.get(mod, {}).get(name) or mod


def _edges(tree: ast.AST, index: _Index, me: str | None = None) -> set[str]:
    """Modules of the package that ``tree`` imports (any import statement, at any depth), with
    a package reached only for its names replaced by the modules defining the names used."""
    found: set[str] = set()
    bound: dict[str, str] = {}  # local name -> package module it is bound to
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] != "xling":
                    continue
                mod = index.module(a.name)
                if mod:
                    found.add(mod)
                bound[a.asname or "xling"] = mod if a.asname else "xling"
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] != "xling":
                continue
            base = index.module(node.module) or node.module
            for a in node.names:
                mod = index.resolve(node.module, a.name)
                if mod in index.files:
                    found.add(mod)
                    if index.module(f"{base}.{a.name}"):
                        bound[a.asname or a.name] = mod
    packages = {n: m for n, m in bound.items() if m and index.files[m].name == "__init__.py"}
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in packages
        ):
            pkg = packages[node.value.id]
            target = index.resolve(pkg, node.attr)
            if target in index.files:
                found.add(target)
    # a package bound only to reach names defined in its submodules is not itself a dependency
    for name, pkg in packages.items():
        if pkg == "xling":
            continue
        attrs = {
            n.attr
            for n in ast.walk(tree)
            if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id == name
        }
        own = index.defined.get(pkg, set())
        imported_directly = any(
            isinstance(n, ast.ImportFrom)
            and index.module(n.module or "") == pkg
            and any(a.name in own for a in n.names)
            for n in ast.walk(tree)
        )
        if attrs and not attrs & own and not imported_directly:
            found.discard(pkg)
    found.discard(me)
    return found


def import_graph(lib: str | Path = paths.LIB) -> dict[str, set[str]]:
    """Module -> the package's modules it imports."""
    index = _Index(Path(lib))
    return {m: _edges(t, index, m) for m, t in index.trees.items()}


@lru_cache(maxsize=4)
def _cached_index(lib: str, stamp: tuple) -> _Index:
    return _Index(Path(lib))


def _index(lib: Path) -> _Index:
    stamp = tuple((str(f), f.stat().st_mtime_ns) for f in sorted(Path(lib).rglob("*.py")))
    return _cached_index(str(lib), stamp)


#: Plumbing: never part of a notebook's fingerprint.
NOT_FINGERPRINTED = ("xling.run", "xling.bench")


def library_modules(code: str, lib: str | Path = paths.LIB) -> list[Path]:
    """The library files ``code`` (a notebook's cells) uses, transitively, plumbing left out."""
    index = _index(Path(lib))
    todo = sorted(_edges(ast.parse(code), index))
    seen: set[str] = set()
    while todo:
        mod = todo.pop()
        if mod in seen or mod.startswith(NOT_FINGERPRINTED):
            continue
        seen.add(mod)
        todo += sorted(_edges(index.trees[mod], index, mod) - seen)
    return [index.files[m] for m in sorted(seen)]


def notebook_code(nb_path: Path) -> str:
    """The code cells of a notebook, as one source (magics and shell lines left out)."""
    nb = json.loads(Path(nb_path).read_text(encoding="utf-8"))
    lines = []
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        for line in "".join(cell.get("source", "")).splitlines():
            if not line.lstrip().startswith(("%", "!")):
                lines.append(line)
        lines.append("")
    return "\n".join(lines)


def input_files(params: dict[str, Any]) -> list[Path]:
    """Files a notebook reads that are not produced by earlier notebooks (for the fingerprint):
    the posts source and the task file (the profile's ``task``, or the paper's: an edited task
    re-runs the notebooks that read it)."""
    out = []
    try:
        out.append(task_file(params.get("task") or DEFAULT_TASK))
    except TaskError:
        pass  # the profile check refuses it, naming the key
    src = posts_source_path(params)
    if src is not None and src.exists():
        out += sorted(p for p in src.rglob("*") if p.is_file()) if src.is_dir() else [src]
    return [p for p in out if p.is_file()]


def fingerprint(nb_path: Path, params: dict[str, Any], upstream: list[str]) -> str:
    """sha256 over the notebook's cells, its parameters, the library code it uses, its input
    files and the fingerprints of the notebooks before it (so a changed upstream re-runs
    everything after it)."""
    nb = json.loads(Path(nb_path).read_text(encoding="utf-8"))
    cells = [(c.get("cell_type"), "".join(c.get("source", ""))) for c in nb.get("cells", [])]
    h = hashlib.sha256()
    h.update(json.dumps(cells, sort_keys=True).encode())
    h.update(json.dumps(params, sort_keys=True, default=str).encode())
    h.update(fingerprint_files(library_modules(notebook_code(nb_path)), paths.LIB).encode())
    h.update(fingerprint_files(input_files(params)).encode())
    for up in upstream:
        h.update(up.encode())
    return h.hexdigest()
