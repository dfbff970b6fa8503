"""xling classify: reading an archive (every format, every bad-input case), the demo archive,
the engine's parts, resume and atomicity, the SLURM settings, the CLI's errors (fast, with a
stand-in model); and, with the embedded model (marked model): a 2-process LocalCluster against
one process, a run killed with kill -9 and restarted, a killed worker, a scheduler started as a
separate process.

The stand-in model scores a post from its text's sha256, so any mix-up of posts between rows,
chunks or files shows as wrong numbers; it counts a post's tokens as its words.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import write
from xling import archive as engine
from xling import paths
from xling.data import archive as arc
from xling.schema import LABELS

# --------------------------------------------------------------------------------------------
# A stand-in model (no llama.cpp): the same interface as ArchiveModel
# --------------------------------------------------------------------------------------------


def fake_logp(text: str) -> np.ndarray:
    raw = np.frombuffer(hashlib.sha256(text.encode()).digest()[:4], dtype=np.uint8) / 64.0
    return raw - np.log(np.exp(raw).sum())


class FakeScorer:
    def __init__(self):
        self.blocks: list[int] = []

    def post_tokens(self, text: str) -> int:
        return len(text.split())

    def score_block(self, texts):
        self.blocks.append(len(texts))
        return np.array([fake_logp(t) for t in texts]).reshape(-1, len(LABELS))

    def close(self):
        pass


class FakeModel:
    """What classify_archive needs of a model."""

    def __init__(self, batch_size=4, max_post_tokens=40, sha="f" * 64):
        from xling.models.prompts import plain_prompt

        self.batch_size, self.max_post_tokens = batch_size, max_post_tokens
        self.gguf_sha256, self.lora_sha256 = sha, None
        self.prompt = plain_prompt()
        self.key = f"fake-{sha[:8]}-{batch_size}-{max_post_tokens}"

    def open(self, n_threads):
        return FakeScorer()


@pytest.fixture(scope="module")
def client():
    """An in-process Dask cluster (threads): the engine's real path, without model processes."""
    from distributed import Client, LocalCluster

    cluster = LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
    )
    with Client(cluster) as c:
        yield c
    cluster.close()


def run_fake(inputs, out, client, **kw):
    kw.setdefault("chunk_rows", 4)
    model = kw.pop("model", FakeModel())
    return engine.classify_archive(inputs, out, model, client=client, progress=False, **kw)


def csv_bytes(rows, header=("id", "text", "lang", "date")) -> bytes:
    import csv

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue().encode("utf-8")


GOOD = [
    ("a1", "Refugees welcome in our town", "en", "2026-01-01T10:00:00Z"),
    ("a2", "Close the border now", "en", "2026-01-01T12:00:00Z"),
    ("a3", "Nice weather for a picnic", "en", "2026-01-02T09:00:00Z"),
    ("a4", "Los migrantes llegan a Canarias", "es", "2026-01-02T11:00:00Z"),
    ("a5", "Visa queues are long this year", "en", "2026-01-03T08:00:00Z"),
]


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


def test_inputs_globs_and_their_errors(tmp_path):
    a = write(tmp_path / "x" / "a.csv", csv_bytes(GOOD))
    b = write(tmp_path / "x" / "b.jsonl", '{"text": "hi"}\n')
    # a glob sorted, a file named twice taken once
    assert arc.expand_inputs([str(tmp_path / "x" / "*"), str(a)]) == [a, b]
    with pytest.raises(arc.ArchiveError, match=r"no files match: .*nothing-\*\.csv"):
        arc.expand_inputs([str(tmp_path / "nothing-*.csv")])
    with pytest.raises(arc.ArchiveError, match="no such file"):
        arc.expand_inputs([str(tmp_path / "missing.csv")])
    write(tmp_path / "notes.txt", "x")
    with pytest.raises(arc.ArchiveError, match="unsupported file type"):
        arc.expand_inputs([str(tmp_path / "notes.txt")])
    assert arc.archive_kind("day.tsv.gz") == ("tsv", True)
    assert arc.archive_kind("d.parquet") == ("parquet", False)


def test_every_format_reads_the_same_posts_with_rows_a_user_sees(tmp_path):
    texts = [r[1] for r in GOOD]
    files = {
        "csv": write(tmp_path / "p.csv", csv_bytes(GOOD)),
        "tsv.gz": write(
            tmp_path / "p.tsv.gz",
            gzip.compress(csv_bytes(GOOD).replace(b",", b"\t")),
        ),
        "jsonl.gz": write(
            tmp_path / "p.jsonl.gz",
            gzip.compress(
                "".join(
                    json.dumps(dict(zip(("id", "text", "lang", "date"), r, strict=True))) + "\n"
                    for r in GOOD
                ).encode()
            ),
        ),
    }
    pq = tmp_path / "p.parquet"
    pd.DataFrame(GOOD, columns=["id", "text", "lang", "date"]).to_parquet(pq)
    files["parquet"] = pq
    # rows: CSV/TSV records start on line 2 (the header is line 1); JSON lines on line 1;
    # Parquet rows count from 1
    first_row = {"csv": 2, "tsv.gz": 2, "jsonl.gz": 1, "parquet": 1}
    for kind, f in files.items():
        scan = arc.scan_file(f, keep=("lang",))
        assert (scan.n_rows, scan.errors) == (5, []), kind
        table, errors = arc.read_chunk(f, 1, 4, keep=("lang",))
        assert errors == []
        assert table["text"].tolist() == texts[1:4], kind
        r0 = first_row[kind]
        assert table["row"].tolist() == [r0 + 1, r0 + 2, r0 + 3], kind
        assert table["id"].tolist() == [f"{f.name}:{r}" for r in (r0 + 1, r0 + 2, r0 + 3)]
        assert table["lang"].tolist() == ["en", "en", "es"]
    table, _ = arc.read_chunk(files["csv"], 0, 2, id_column="id")
    assert table["id"].tolist() == ["a1", "a2"]


def test_a_quoted_field_over_two_lines_keeps_the_next_records_line(tmp_path):
    f = write(tmp_path / "q.csv", b'text,lang\n"two\nlines",en\nnext,en\n')
    table, errors = arc.read_chunk(f, 0, 5)
    # record 1 starts on line 2 and spans lines 2-3, so record 2 starts on line 4
    assert table["row"].tolist() == [2, 4] and errors == []


def planted_files(folder: Path) -> dict[str, Path]:
    """One file per bad-input case, each with good rows around the bad one."""
    rows = list(GOOD)
    files = {}
    bad = rows[:2] + [("b1", "", "en", "2026-01-01")] + rows[2:]  # empty text at line 4
    files["empty"] = write(folder / "empty.csv", csv_bytes(bad))
    raw = csv_bytes(rows).replace(b"Close the border", b"Close the \xff\xfe border")
    files["undecodable"] = write(folder / "undecodable.csv.gz", gzip.compress(raw))  # line 3
    long = " ".join(["word"] * 100)  # 100 words: over the stand-in's 40 tokens
    files["long"] = write(folder / "long.csv", csv_bytes([*rows[:3], ("l1", long, "en", "")]))
    files["fields"] = write(folder / "fields.csv", csv_bytes(rows[:2]) + b"x,only two\n")
    files["nocolumn"] = write(
        folder / "nocolumn.csv", csv_bytes(rows, header=("id", "body", "lang", "date"))
    )
    # 2000 records of hex digits (hardly compressible), the stream cut in the middle
    noise = [(f"t{i}", hashlib.sha256(str(i).encode()).hexdigest(), "en", "") for i in range(2000)]
    packed = gzip.compress(csv_bytes(noise))
    files["truncated"] = write(folder / "truncated.csv.gz", packed[: len(packed) // 2])
    lines = [json.dumps({"text": "ok one", "lang": "en", "date": ""}), "{not json", "[1, 2]"]
    lines += [json.dumps({"lang": "en", "date": ""})]  # no text field
    files["jsonl"] = write(folder / "bad.jsonl", "\n".join(lines) + "\n")
    return files


def test_every_bad_input_lands_in_errors_and_the_rest_completes(tmp_path, client):
    files = planted_files(tmp_path / "in")
    out = tmp_path / "out"
    res = run_fake([str(tmp_path / "in" / "*")], out, client, keep=("lang", "date"))
    errors = pd.read_parquet(out / "errors.parquet")
    by_file = {Path(f).name: g for f, g in errors.groupby("file")}
    # each case: (file, row, what the reason says); rows worked out from planted_files
    expect = [
        ("empty.csv", 4, "empty text"),
        ("undecodable.csv.gz", 3, "not UTF-8"),
        ("long.csv", 5, "over-long post: 100 tokens"),
        ("fields.csv", 4, "2 fields but the header has 4"),
        ("nocolumn.csv", 1, "missing column 'text' (--text-column)"),
        ("truncated.csv.gz", None, "truncated gzip"),
        ("bad.jsonl", 2, "not valid JSON"),
        ("bad.jsonl", 3, "a JSON list, not an object"),
        ("bad.jsonl", 4, "no field 'text'"),
    ]
    for name, row, what in expect:
        g = by_file[name]
        hit = g[g["reason"].str.contains(what, regex=False)]
        assert len(hit) == 1, (name, what, g.to_dict("records"))
        assert (pd.isna(hit["row"].iloc[0]) and row is None) or hit["row"].iloc[0] == row
    assert len(errors) == len(expect)
    assert res.refused == len(expect) and not res.ok
    parts = engine.read_parts(out)
    # the good rows of each file went through: 5 + 4 + 3 + 2 + 0 + (the truncated file's
    # complete records) + 1
    n_trunc = arc.scan_file(files["truncated"]).n_rows
    assert 0 < n_trunc < 2000
    assert len(parts) == 5 + 4 + 3 + 2 + 0 + n_trunc + 1 == res.scored
    # each post's numbers are its own text's
    table, _ = arc.read_chunk(files["empty"], 0, 10)
    mine = parts[parts["file"] == "empty.csv"].sort_values("row")
    assert mine["row"].tolist() == table["row"].tolist()
    want = np.array([fake_logp(t) for t in table["text"]])
    np.testing.assert_array_equal(mine[list(engine.LOGP_COLUMNS)].to_numpy(), want)
    assert (mine["prediction"] == [LABELS[k] for k in want.argmax(1)]).all()
    assert set(parts["model_sha256"]) == {"f" * 64}


def test_demo_archive_is_synthetic_repeatable_and_plants_its_faults(tmp_path):
    a = arc.demo_archive(90, 3, tmp_path / "a", seed=7, bad_rows=3, truncated=True)
    b = arc.demo_archive(90, 3, tmp_path / "b", seed=7, bad_rows=3, truncated=True)
    assert [p.name for p in a] == ["archive-000.csv.gz", "archive-001.csv.gz", "archive-002.csv.gz"]
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]
    first = pd.read_csv(a[0], dtype=str, keep_default_na=False)
    assert len(first) == 30 and set(first["source"]) == {arc.SYNTHETIC_SOURCE}
    assert list(first.columns) == ["id", "text", "lang", "date", "place"] + ["source"]
    # bad rows at linspace(0, 89, 5)[1:-1] = 22, 44, 66: shard 0 row 22 (line 24) empty,
    # shard 1 row 14 (line 16) undecodable, shard 2 row 6 (line 8) over-long
    assert first["text"].iloc[22] == ""
    _, errors = arc.read_chunk(a[1], 0, 30)
    assert errors == [arc.error(a[1], 16, "bytes that are not UTF-8 in the text (column 'text')")]
    table, _ = arc.read_chunk(a[2], 0, 30)
    assert len(table["text"].iloc[6].split()) == 1500
    scan = arc.scan_file(a[2])
    assert scan.n_rows < 30 and "truncated gzip" in scan.errors[0]["reason"]
    clean = arc.demo_archive(40, 2, tmp_path / "a")
    assert len(clean) == 2 and sorted(p.name for p in (tmp_path / "a").iterdir()) == [
        "archive-000.csv.gz",
        "archive-001.csv.gz",
    ]
    with pytest.raises(ValueError, match="shards"):
        arc.demo_archive(2, 3, tmp_path / "c")


# --------------------------------------------------------------------------------------------
# The engine: parts, resume, atomicity, settings
# --------------------------------------------------------------------------------------------


def test_blocks_follow_the_file_not_the_chunk(tmp_path):
    # 10 good records, batch size 4: blocks are records 0-3, 4-7, 8-9 whatever the chunking
    f = write(tmp_path / "t.csv", csv_bytes([(f"i{i}", f"post {i}", "en", "") for i in range(10)]))
    model = FakeModel(batch_size=4)
    scorer, _ = engine.worker_scorer(model, 1)
    scorer.blocks.clear()
    for chunk, (start, stop) in enumerate([(0, 8), (8, 10)]):
        task = engine.ChunkTask(str(f), "t.csv", chunk, start, stop)
        engine.classify_chunk(task, model, engine.Settings(chunk_rows=8), str(tmp_path / "o"))
    assert scorer.blocks == [4, 4, 2]


def test_resume_skips_written_parts_and_redoes_a_missing_one(tmp_path, client):
    arc.demo_archive(40, 2, tmp_path / "in", seed=1)
    out = tmp_path / "out"
    first = run_fake([str(tmp_path / "in" / "*.csv.gz")], out, client, keep=("lang", "date"))
    parts = sorted((out / "parts").glob("*.parquet"))
    # 2 files of 20 rows, chunks of 4: 5 parts each
    assert len(parts) == first.tasks == 10 and first.parts_done_before == 0
    assert parts[0].name == "archive-000.csv.gz-00000.parquet"
    stamps = {p: p.stat().st_mtime_ns for p in parts}
    before = {p: pd.read_parquet(p) for p in parts}
    again = run_fake([str(tmp_path / "in" / "*.csv.gz")], out, client, keep=("lang", "date"))
    assert again.parts_done_before == 10 and again.scored_now == 0 and again.scored == 40
    assert {p: p.stat().st_mtime_ns for p in parts} == stamps
    parts[3].unlink()
    third = run_fake([str(tmp_path / "in" / "*.csv.gz")], out, client, keep=("lang", "date"))
    assert third.parts_done_before == 9 and third.scored_now == 4
    pd.testing.assert_frame_equal(pd.read_parquet(parts[3]), before[parts[3]])
    summary = pd.read_csv(out / "summary.csv")
    assert summary.iloc[0][["lang", "day", "n_posts"]].tolist() == ["all", "all", 40]


def test_other_settings_in_the_same_output_are_refused(tmp_path, client):
    arc.demo_archive(8, 1, tmp_path / "in")
    out = tmp_path / "out"
    run_fake([str(tmp_path / "in" / "*")], out, client)
    with pytest.raises(arc.ArchiveError, match="chunk_rows: 4 then, 8 now"):
        run_fake([str(tmp_path / "in" / "*")], out, client, chunk_rows=8)
    with pytest.raises(arc.ArchiveError, match="gguf_sha256"):
        run_fake([str(tmp_path / "in" / "*")], out, client, model=FakeModel(sha="e" * 64))
    # restart_on_change: the old parts go, the new settings' parts come
    res = run_fake([str(tmp_path / "in" / "*")], out, client, chunk_rows=8, restart_on_change=True)
    assert res.parts_done_before == 0 and res.tasks == 1
    assert [p.name for p in (out / "parts").iterdir()] == ["archive-000.csv.gz-00000.parquet"]
    with pytest.raises(arc.ArchiveError, match="multiple of the batch size 4"):
        run_fake([str(tmp_path / "in" / "*")], tmp_path / "o2", client, chunk_rows=6)


def test_a_part_is_written_whole_or_not_at_all(tmp_path, monkeypatch, client):
    import pyarrow.parquet as pq

    path = tmp_path / "parts" / "f-00000.parquet"
    real = pq.write_table

    def dies_half_way(table, where, **kw):
        Path(where).write_bytes(b"PAR1 half a file")
        raise KeyboardInterrupt  # a kill while writing

    monkeypatch.setattr(pq, "write_table", dies_half_way)
    with pytest.raises(KeyboardInterrupt):
        engine.write_part(pd.DataFrame({"id": ["x"]}), path, {"errors": []})
    assert not path.exists() and list(path.parent.iterdir()) == []
    monkeypatch.setattr(pq, "write_table", real)
    # a temporary file a kill -9 left behind is removed by the next run, never taken for a part
    arc.demo_archive(8, 1, tmp_path / "in")
    out = tmp_path / "out"
    write(out / "parts" / ".archive-000.csv.gz-00000.parquet.123.tmp", b"half")
    res = run_fake([str(tmp_path / "in" / "*")], out, client)
    assert res.parts_done_before == 0
    assert sorted(p.name for p in (out / "parts").iterdir()) == [
        "archive-000.csv.gz-00000.parquet",
        "archive-000.csv.gz-00001.parquet",
    ]


def test_summary_shares_per_language_and_day():
    counts = {
        ("en", "2026-01-01", "unrelated"): 3,
        ("en", "2026-01-01", "neutral"): 1,
        ("es", "2026-01-02", "anti-immigration"): 4,
    }
    t = engine.summary_table(counts).set_index(["lang", "day"])
    # overall: 8 posts, 3 unrelated, 1 neutral, 4 anti
    assert t.loc[("all", "all"), "n_posts"] == 8
    assert t.loc[("all", "all"), "unrelated"] == pytest.approx(3 / 8)
    assert t.loc[("all", "all"), "anti-immigration"] == pytest.approx(0.5)
    # per language: en 3/4 unrelated; per day: the 2nd is all anti
    assert t.loc[("en", "all"), "unrelated"] == pytest.approx(0.75)
    assert t.loc[("all", "2026-01-02"), "anti-immigration"] == 1.0
    assert t.loc[("es", "all"), "pro-immigration"] == 0.0
    assert len(t) == 1 + 2 + 2


def test_summary_figure_has_a_panel_per_view(tmp_path):
    from xling.plots.archive import plot_archive_summary

    counts = {("en", "2026-01-01", "unrelated"): 3, ("es", "2026-01-02", "neutral"): 2}
    fig = plot_archive_summary(engine.summary_table(counts))
    assert len(fig.axes) == 2  # by language, by day
    no_days = engine.summary_table({("all", "all", "neutral"): 2})
    assert len(plot_archive_summary(no_days).axes) == 1


# --------------------------------------------------------------------------------------------
# SLURM settings
# --------------------------------------------------------------------------------------------


def test_slurm_yaml_to_cluster_arguments(tmp_path):
    kwargs, jobs = engine.slurm_settings(paths.ROOT / "docs" / "slurm-example.yaml")
    assert jobs == 4
    assert kwargs == {
        "queue": "cpu",
        "account": "my-project",
        "walltime": "04:00:00",
        "cores": 8,
        "memory": "16GB",
        "processes": 1,
        "job_extra_directives": [],
    }
    from dask_jobqueue import SLURMCluster

    cluster = SLURMCluster(
        **kwargs, scheduler_options={"host": "127.0.0.1", "dashboard_address": ":0"}
    )
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    for line in ("#SBATCH -p cpu", "#SBATCH -A my-project", "#SBATCH -t 04:00:00"):
        assert line in script
    assert "--cpus-per-task=8" in script and "--nthreads 8" in script


@pytest.mark.parametrize(
    "text, why",
    [
        ("cores: 4\nmemory: 8GB\nwalltime: '01:00:00'\npartition: x\n", "unknown key 'partition'"),
        ("cores: four\nmemory: 8GB\nwalltime: '01:00:00'\n", "'cores' must be a int"),
        ("cores: 0\nmemory: 8GB\nwalltime: '01:00:00'\n", "'cores' must be at least 1"),
        ("cores: 4\nwalltime: '01:00:00'\n", "missing memory"),
        ("cores: 4\nmemory: 8GB\nwalltime: '1 hour'\n", "not HH:MM:SS"),
        ("cores: 4\nmemory: lots\nwalltime: '01:00:00'\n", "not like '16GB'"),
        ("- cores\n", "expected a mapping"),
        ("cores: [\n", "not valid YAML"),
    ],
)
def test_slurm_yaml_errors_name_the_key(tmp_path, text, why):
    f = write(tmp_path / "site.yaml", text)
    with pytest.raises(arc.ArchiveError, match=why.replace("(", r"\(").replace("[", r"\[")):
        engine.slurm_settings(f)


# --------------------------------------------------------------------------------------------
# The CLI's errors (subprocesses: python -m xling.classify)
# --------------------------------------------------------------------------------------------


def cli(*args, cwd=None, env=None, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "xling.classify", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=timeout,
    )


def test_cli_refuses_bad_input_with_a_clear_message(tmp_path):
    res = cli(str(tmp_path / "none-*.csv.gz"), "--gguf", "m.gguf", "--output", str(tmp_path))
    assert res.returncode == 2 and "no files match" in res.stderr and "none-*.csv.gz" in res.stderr
    arc.demo_archive(8, 1, tmp_path / "in")
    glob = str(tmp_path / "in" / "*.csv.gz")
    res = cli("--input", glob, "--output", str(tmp_path / "o"))
    assert res.returncode == 2 and "--profile NAME --variant V, or --gguf FILE" in res.stderr
    res = cli("--input", glob, "--gguf", str(tmp_path / "m.gguf"), "--output", str(tmp_path))
    assert res.returncode == 2 and "model GGUF file not found" in res.stderr
    # a profile whose run has no files yet: the message names what to run first
    env = dict(os.environ, XLING_RUNS=str(tmp_path / "runs"))
    res = cli("classify", "--profile", "smoke", "--variant", "en", "--input", glob, "--output",
              str(tmp_path / "o"), env=env)  # fmt: skip
    assert res.returncode == 2
    assert "en-lora.gguf not found" in res.stderr
    assert "./run_all.sh --profile smoke --only 00_data 01_finetune 02_quantize" in res.stderr
    res = cli("--profile", "smoke", "--variant", "xx", "--input", glob, "--output", "o", env=env)
    assert res.returncode == 2 and "--variant xx: profile smoke has en, multi" in res.stderr
    res = cli("--profile", "paper", "--input", glob, "--output", "o", env=env)
    assert res.returncode == 2 and "has no model" in res.stderr
    slurm = ("--cluster", "slurm", "--gguf", "m.gguf", "--input", glob, "--output", "o")
    res = cli(*slurm)
    assert res.returncode == 2 and "needs --cluster-config" in res.stderr
    res = cli(*slurm, "--cluster-config", str(write(tmp_path / "s.yaml", "cores: 1\n")))
    assert res.returncode == 2 and "missing memory, walltime" in res.stderr
    res = cli("frobnicate")
    assert res.returncode == 2 and "unknown command 'frobnicate'" in res.stderr


@pytest.mark.slow  # installs the project (into a scratch folder, not the environment)
def test_the_console_script(tmp_path):
    """[project.scripts] gives an ``xling`` command whose ``classify`` is this CLI: the one the
    environment has, or one built from this tree into a scratch folder."""
    script, env = Path(sys.executable).parent / "xling", dict(os.environ)
    if not script.exists():
        import shutil

        # built from a copy, so the build leaves nothing in the tree
        src = tmp_path / "src"
        shutil.copytree(paths.LIB, src / "lib" / "xling", ignore=shutil.ignore_patterns("__py*"))
        for name in ("pyproject.toml", "README.md"):
            shutil.copy(paths.ROOT / name, src / name)
        target = tmp_path / "site"
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
             "--no-build-isolation", "--target", str(target), str(src)],
            check=True, capture_output=True, timeout=600,
        )  # fmt: skip
        script = target / "bin" / "xling"
        env["PYTHONPATH"] = os.pathsep.join([str(target), env.get("PYTHONPATH", "")])
    res = subprocess.run(
        [str(script), "classify", "--help"], capture_output=True, text=True, env=env, timeout=120
    )
    assert res.returncode == 0 and "--scheduler" in res.stdout and "--cluster-config" in res.stdout
    res = subprocess.run(
        [str(script), "classify", "--input", str(tmp_path / "none-*.csv"), "--gguf", "m.gguf",
         "--output", str(tmp_path / "o")],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert res.returncode == 2 and "no files match" in res.stderr


# --------------------------------------------------------------------------------------------
# With the embedded model (slow tier)
# --------------------------------------------------------------------------------------------

N_POSTS, CHUNK = 64, 32


@pytest.fixture(scope="module")
def small_archive(tmp_path_factory):
    folder = tmp_path_factory.mktemp("archive")
    # 64 rows in 2 shards, 3 bad rows (one of each kind) at rows 16, 31, 47
    return arc.demo_archive(N_POSTS, 2, folder, seed=5, bad_rows=3)


@pytest.fixture(scope="module")
def base_gguf():
    from xling.models.base import embedded_gguf

    return embedded_gguf()


@pytest.fixture(scope="module")
def model(base_gguf):
    from xling.models.layout import ModelFiles
    from xling.models.prompts import plain_prompt

    return engine.ArchiveModel.from_files(ModelFiles("llamacpp-q4_k_m", base_gguf), plain_prompt())


@pytest.fixture(scope="module")
def reference(small_archive, model, tmp_path_factory):
    """The archive classified on a 2-process LocalCluster (the default engine)."""
    out = tmp_path_factory.mktemp("ref") / "out"
    res = engine.classify_archive(
        [str(small_archive[0].parent / "*.csv.gz")],
        out,
        model,
        keep=("lang", "date"),
        chunk_rows=CHUNK,
        workers=2,
        threads_per_worker=1,
        dashboard_address=None,
        progress=False,
    )
    return out, res


def parts_of(out) -> dict[str, pd.DataFrame]:
    return {p.name: pd.read_parquet(p) for p in sorted((Path(out) / "parts").glob("*.parquet"))}


@pytest.mark.model
def test_two_worker_processes_equal_one_process_post_for_post(reference, small_archive, model):
    out, res = reference
    assert len(res.workers) == 2  # both workers took chunks
    assert res.refused == 3 and res.scored == N_POSTS - 3
    errors = pd.read_parquet(out / "errors.parquet")
    reasons = " | ".join(errors["reason"])
    assert "empty text" in reasons and "not UTF-8" in reasons and "over-long post" in reasons
    got = engine.read_parts(out).set_index("id")
    # one process, no Dask: each file's good posts in blocks of batch_size consecutive records,
    # each on a reset cache (what the engine promises any worker count and chunk size gives)
    scorer = model.open(2)
    try:
        for f in small_archive:
            table, _ = arc.read_chunk(f, 0, 10**6, keep=("lang",))
            table = table[table["text"].map(scorer.post_tokens) <= model.max_post_tokens]
            for _, block in table.groupby(table["_index"] // model.batch_size):
                want = scorer.score_block(block["text"].tolist())
                have = got.loc[block["id"], list(engine.LOGP_COLUMNS)].to_numpy()
                np.testing.assert_array_equal(have, want)  # the same bits
        # and one post at a time, unbatched: within the batched scorer's rounding
        from xling.models.scorers import LlamaCppScorer

        one = LlamaCppScorer(model.gguf, model.prompt, n_threads=2)
        texts, _ = arc.read_chunk(small_archive[0], 0, 12)
        single = np.array([one.score_one(t) for t in texts["text"]])
        one.close()
        have = got.loc[texts["id"], list(engine.LOGP_COLUMNS)].to_numpy()
        assert np.abs(have - single).max() <= engine.UNBATCHED_TOLERANCE
    finally:
        scorer.close()


@pytest.mark.model
def test_a_run_killed_with_kill_9_and_restarted_writes_the_same_parts(
    reference, small_archive, base_gguf, tmp_path
):
    ref_out, _ = reference
    out = tmp_path / "out"
    args = [
        sys.executable, "-m", "xling.classify", str(small_archive[0].parent / "*.csv.gz"),
        "--gguf", str(base_gguf), "--keep", "lang,date", "--chunk-rows", str(CHUNK),
        "--workers", "1", "--output", str(out), "--dashboard-address", ":0", "--no-progress",
    ]  # fmt: skip
    proc = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if list((out / "parts").glob("*.parquet")):
            break
        time.sleep(0.2)
    assert proc.poll() is None, proc.stdout.read().decode()
    os.killpg(proc.pid, signal.SIGKILL)  # the client, its scheduler and its worker: kill -9
    proc.wait()
    written = sorted((out / "parts").glob("*.parquet"))
    assert 1 <= len(written) < 4  # killed mid-way: some parts, not all four
    res = cli(*args[3:], timeout=300)
    assert res.returncode == 1, res.stdout + res.stderr  # 1: the planted bad rows
    assert f"{len(written)} already written" in res.stdout
    mine, ref = parts_of(out), parts_of(ref_out)
    assert list(mine) == list(ref)
    for name in ref:
        pd.testing.assert_frame_equal(mine[name], ref[name])
    pd.testing.assert_frame_equal(
        pd.read_parquet(out / "errors.parquet"), pd.read_parquet(ref_out / "errors.parquet")
    )
    assert (out / "summary.png").stat().st_size > 1000


@pytest.mark.model
def test_a_worker_killed_mid_run_is_replaced_and_nothing_is_lost(
    reference, small_archive, model, tmp_path
):
    import threading

    from distributed import Client, LocalCluster

    ref_out, _ = reference
    out = tmp_path / "out"
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None)
    killed = []
    with Client(cluster) as c:
        pids = list(c.run(os.getpid).values())

        def kill_one():
            deadline = time.time() + 240
            while time.time() < deadline and not list((out / "parts").glob("*.parquet")):
                time.sleep(0.1)
            os.kill(pids[0], signal.SIGKILL)
            killed.append(pids[0])

        t = threading.Thread(target=kill_one, daemon=True)
        t.start()
        res = engine.classify_archive(
            [str(small_archive[0].parent / "*.csv.gz")],
            out,
            model,
            keep=("lang", "date"),
            chunk_rows=16,  # 4 chunks: the kill lands while some are in flight
            client=c,
            progress=False,
        )
        t.join()
    cluster.close()
    assert killed and res.scored == N_POSTS - 3
    # chunks of 16, not 32: other part files, the same posts with the same bits
    got = engine.read_parts(out).sort_values("id").reset_index(drop=True)
    ref = engine.read_parts(ref_out).sort_values("id").reset_index(drop=True)
    pd.testing.assert_frame_equal(got, ref)


@pytest.mark.model
def test_a_scheduler_started_as_its_own_process_is_joined(
    reference, small_archive, base_gguf, tmp_path
):
    ref_out, _ = reference
    sched_file = tmp_path / "scheduler.json"
    env = dict(os.environ)
    common = ["--no-dashboard"]
    sched = subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
         "--port", "0", "--scheduler-file", str(sched_file), *common],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
    )  # fmt: skip
    worker = None
    try:
        deadline = time.time() + 60
        while not sched_file.exists() and time.time() < deadline:
            time.sleep(0.2)
        address = json.loads(sched_file.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        worker = subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "2",
             "--nworkers", "1", "--host", "127.0.0.1", *common],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
        )  # fmt: skip
        from distributed import Client

        with Client(address, timeout="30s") as c:
            c.wait_for_workers(1, timeout=60)
        out = tmp_path / "out"
        res = cli(str(small_archive[0].parent / "*.csv.gz"), "--gguf", str(base_gguf),
                  "--keep", "lang,date", "--chunk-rows", str(CHUNK), "--scheduler", address,
                  "--output", str(out), "--no-progress", timeout=300)  # fmt: skip
        assert res.returncode == 1, res.stdout + res.stderr
        assert "Dask: 1 workers" in res.stdout
        mine, ref = parts_of(out), parts_of(ref_out)
        assert list(mine) == list(ref)
        for name in ref:
            pd.testing.assert_frame_equal(mine[name], ref[name])
    finally:
        for p in (worker, sched):
            if p is not None:
                p.terminate()
                try:
                    p.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    p.kill()


def test_notebook_09_needs_its_variants_file_and_a_model():
    from xling import config
    from xling.run.requirements import missing_requirement, notebook_meta

    needs = notebook_meta(paths.NOTEBOOKS / "09_classify_archive.ipynb")["requires"]
    assert needs == ["model", "variant_files"]
    params = {"base_model": "embedded", "variant": "en", "backend": "llamacpp-q4_k_m+lora"}
    why = missing_requirement(["variant_files"], params, "no-such-run")
    assert "runs/no-such-run/gguf/en-lora.gguf missing (run 02_quantize first)" in why
    merged = dict(params, backend="llamacpp-q8_0")
    assert "gguf/en-q8_0.gguf missing" in missing_requirement(["variant_files"], merged, "x")
    # the untuned base needs no file of 02; the paper profile has no model: skipped, saying so
    assert missing_requirement(["variant_files"], dict(params, variant="base"), "x") is None
    paper = config.load_profile("paper").params_for("09_classify_archive")
    assert "no model" in missing_requirement(needs, paper, "paper")


@pytest.mark.model
def test_a_reset_restores_the_prefix_state_to_the_bits_of_a_fresh_scorer(model, small_archive):
    """reset() copies the prefix's saved KV state back instead of evaluating the prefix again:
    a block after other blocks and a reset gives the bits a freshly opened scorer gives, and
    the same bits as a reset that evaluates the prefix again."""
    table, _ = arc.read_chunk(small_archive[0], 0, 40)
    texts = [t for t in table["text"] if t.strip()][:36]
    first, later = texts[:16], texts[16:32]
    fresh = model.open(2)
    try:
        n = fresh.scorer.n_evaluated
        want = fresh.score_block(later)
        # the reset before a block evaluated nothing: only the 16 posts' own tokens were
        post = sum(fresh.post_tokens(t) for t in later)
        assert fresh.scorer.n_evaluated - n == post
    finally:
        fresh.close()
    used = model.open(2)
    try:
        used.score_block(first)
        used.scorer.score_many(texts[32:36])  # cells left behind by a block without a reset
        np.testing.assert_array_equal(used.score_block(later), want)
        used.scorer._prefix_state = None  # the old way: evaluate the prefix again
        np.testing.assert_array_equal(used.score_block(later), want)
    finally:
        used.close()
