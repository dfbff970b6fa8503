"""The library's shape, read from its source: layers import downward only, no import cycles, every
sub-package says what stage it is and what it may import, and every contract file has one writer.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from xling import paths
from xling.run import fingerprint

LIB = Path(fingerprint.__file__).resolve().parents[1]  # lib/xling

#: Layers from the bottom; a module may import its own layer or any below it, never above.
LAYERS = [
    ("xling", "xling.paths", "xling.schema", "xling.tasks"),
    ("xling.config", "xling.artifacts"),
    ("xling.data",),
    ("xling.models",),
    ("xling.infer", "xling.translate", "xling.classroom", "xling.archive"),
    ("xling.analysis",),
    ("xling.plots",),
    ("xling.run", "xling.classify"),
    ("xling.bench",),
]


def layer_of(module: str) -> int:
    best = None
    for rank, names in enumerate(LAYERS):
        for name in names:
            if module == name or (name != "xling" and module.startswith(name + ".")):
                best = rank
    if best is None:
        raise AssertionError(f"{module} is in no layer: add it to LAYERS and docs/ARCHITECTURE.md")
    return best


def test_layer_of_reads_packages_and_modules():
    # worked out from LAYERS: a data submodule is layer 2, the root package 0, the runner 7
    assert layer_of("xling.data.audit") == 2
    assert layer_of("xling") == 0
    assert layer_of("xling.run.runner") == 7
    with pytest.raises(AssertionError):
        layer_of("xling.nowhere")


def test_graph_reader_resolves_every_form_of_import(tmp_path):
    # a tiny package: a/__init__ re-exports f from a.m; b imports it three ways
    pkg = tmp_path / "xling"
    (pkg / "a").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a" / "__init__.py").write_text('"""A."""\nfrom xling.a.m import f\n')
    (pkg / "a" / "m.py").write_text("def f():\n    return 1\n")
    (pkg / "b.py").write_text(
        "from xling.a import f\nimport xling.a.m\n\ndef g():\n    from xling import a\n"
    )
    graph = fingerprint.import_graph(pkg)
    # 'from xling.a import f' is f's defining module, a.m; 'from xling import a' the package
    assert graph["xling.b"] == {"xling.a.m", "xling.a"}
    assert graph["xling.a"] == {"xling.a.m"}


def test_no_upward_import_and_no_cycle():
    graph = fingerprint.import_graph(LIB)
    upward = [
        f"{a} (layer {layer_of(a)}) imports {b} (layer {layer_of(b)})"
        for a, targets in graph.items()
        for b in targets
        if layer_of(b) > layer_of(a)
    ]
    assert not upward, "upward imports:\n" + "\n".join(upward)

    # depth-first search for a cycle, reporting it
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_a_planted_upward_import_and_cycle_are_found(tmp_path):
    # data importing plots is upward (2 -> 6); a.x <-> a.y is a cycle
    pkg = tmp_path / "xling"
    (pkg / "data").mkdir(parents=True)
    (pkg / "plots").mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "data" / "__init__.py").write_text("")
    (pkg / "plots" / "__init__.py").write_text("")
    (pkg / "plots" / "common.py").write_text("X = 1\n")
    (pkg / "data" / "x.py").write_text("def h():\n    from xling.plots import common\n")
    (pkg / "data" / "y.py").write_text("from xling.data import z\n")
    (pkg / "data" / "z.py").write_text("from xling.data import y\n")
    graph = fingerprint.import_graph(pkg)
    assert graph["xling.data.x"] == {"xling.plots.common"}
    assert layer_of("xling.plots.common") > layer_of("xling.data.x")
    assert "xling.data.z" in graph["xling.data.y"] and "xling.data.y" in graph["xling.data.z"]


def test_every_subpackage_states_its_stage_and_imports():
    for init in sorted(LIB.glob("*/__init__.py")):
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))) or ""
        assert "Layer" in doc and "May import" in doc, (
            f"{init.relative_to(LIB.parent)}: the docstring must name its layer ('Layer ...') and "
            "what it may import ('May import ...')"
        )


def test_every_module_has_a_docstring():
    for f in sorted(LIB.rglob("*.py")):
        assert ast.get_docstring(ast.parse(f.read_text(encoding="utf-8"))), f"{f}: no docstring"


def test_contract_files_have_one_writer_each():
    # every pattern names a notebook that exists (or the runner / the manifest writer)
    notebooks = {p.stem for p in paths.NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")}
    for pattern, writer in paths.CONTRACT.items():
        assert writer in notebooks | {"run_all.sh", "xling.artifacts"}, (pattern, writer)
    for writer in paths.FIGURES_BY:
        assert writer in notebooks
    names = [n for ns in paths.FIGURES_BY.values() for n in ns]
    assert len(names) == len(set(names)), "a figure name under two writers"
    # worked out from CONTRACT: 04's predictions are its own file, 03's another
    assert paths.writer_of("translation/predictions.csv") == "04_translation_ablation"
    assert paths.writer_of("predictions.csv") == "03_crosslingual_eval"
    assert paths.writer_of("adapters/en/adapter/adapter_model.safetensors") == "01_finetune"
    assert paths.writer_of("metrics/nothing.csv") is None


def test_no_notebook_writes_files_by_hand():
    # every table and figure goes through the save helpers (atomic, recorded in the manifest)
    import json

    for nb in sorted(paths.NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")):
        cells = json.loads(nb.read_text(encoding="utf-8"))["cells"]
        code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        for forbidden in (".to_csv(", ".write_text(", ".savefig(", '"predictions.csv"'):
            assert forbidden not in code, f"{nb.name} calls {forbidden} itself"
