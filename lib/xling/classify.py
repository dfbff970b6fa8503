"""``xling classify``: classify a whole archive of posts on Dask (``python -m xling.classify`` too).

    xling classify --profile demo --variant en --input 'archive/*.csv.gz' --output out/
    xling classify --gguf model.gguf [--lora lora.gguf] archive/*.jsonl --output out/
    xling classify ... --scheduler tcp://host:8786          (a running Dask cluster)
    xling classify ... --cluster slurm --cluster-config params/slurm-example.yaml

Writes OUTPUT/parts/*.parquet (one per chunk of rows of one file), OUTPUT/errors.parquet,
OUTPUT/summary.csv and OUTPUT/summary.png. A re-run resumes: finished parts are kept. The exit
code is 0 when every row was classified, 1 when some were refused (see errors.parquet), 2 for
input that cannot be used at all (no file matches, no model files, bad settings).
The engine is :mod:`xling.archive`.

Layer 7 (beside :mod:`xling.run`: it writes the figure, so it sits above :mod:`xling.plots`).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from xling import archive as engine
from xling.artifacts import atomic_write
from xling.config import ConfigError
from xling.data.archive import ArchiveError


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="xling classify",
        description="Classify an archive of posts (csv, tsv, jsonl, each optionally gzipped, "
        "or parquet) with a fine-tuned model on Dask: one laptop by default, a cluster with the "
        "same command.",
    )
    ap.add_argument("inputs", nargs="*", help="files or glob patterns (quote the globs)")
    ap.add_argument(
        "--input", action="append", default=[], help="a file or glob (repeatable), as INPUTS"
    )
    ap.add_argument("--output", required=True, help="output folder (a re-run resumes in it)")
    data = ap.add_argument_group("columns")
    data.add_argument("--text-column", default="text", help="the posts' text (default: text)")
    data.add_argument(
        "--id-column", default=None, help="each post's id (default: file name and row number)"
    )
    data.add_argument(
        "--keep",
        default="",
        help="columns carried into the output, comma-separated (e.g. lang,date,place; a kept "
        "lang/language and date column give the summary's per-language and per-day shares)",
    )
    model = ap.add_argument_group("model (a profile run's files, or GGUF files)")
    model.add_argument("--profile", default=None, help="a finished run's profile (demo, full)")
    model.add_argument(
        "--run",
        default=None,
        help="a run named apart from its profile (./run_all.sh --run NAME): its files, with the "
        "profile it was made with (default: the profile's own run)",
    )
    model.add_argument("--variant", default="en", help="the fine-tuned variant (default en)")
    model.add_argument(
        "--backend",
        default="llamacpp-q4_k_m+lora",
        help="which of 02_quantize's files (default llamacpp-q4_k_m+lora: base Q4_K_M + LoRA)",
    )
    model.add_argument("--gguf", default=None, help="a GGUF model file instead of a profile")
    model.add_argument("--lora", default=None, help="a LoRA GGUF applied to --gguf")
    model.add_argument(
        "--prompt-format",
        default=None,
        help="plain | chat (default: the profile's; plain with --gguf)",
    )
    model.add_argument("--batch-size", type=int, default=16, help="posts per llama.cpp decode")
    model.add_argument(
        "--max-post-tokens",
        type=int,
        default=512,
        help="a longer post is refused into errors.parquet (default 512 tokens)",
    )
    eng = ap.add_argument_group("engine (Dask)")
    eng.add_argument("--workers", type=int, default=None, help="local worker processes")
    eng.add_argument(
        "--threads-per-worker",
        type=int,
        default=None,
        help="threads per local worker (its model's llama.cpp threads); default 1, with one "
        "worker per core",
    )
    eng.add_argument("--scheduler", default=None, help="join a running Dask scheduler (address)")
    eng.add_argument(
        "--cluster", choices=("local", "slurm"), default="local", help="local (default) or slurm"
    )
    eng.add_argument(
        "--cluster-config", default=None, help="YAML of SLURM site settings (--cluster slurm)"
    )
    eng.add_argument(
        "--chunk-rows",
        type=int,
        default=512,
        help="rows per task and part (a multiple of --batch-size; default 512)",
    )
    eng.add_argument("--dashboard-address", default=":8787", help="local dashboard (default :8787)")
    eng.add_argument("--no-progress", action="store_true", help="no progress bar")
    return ap


def resolve_model(args) -> engine.ArchiveModel:
    """The model the arguments name: --gguf [--lora], or a profile run's variant files."""
    kw = {"batch_size": args.batch_size, "max_post_tokens": args.max_post_tokens}
    if args.gguf:
        if args.profile or args.run:
            raise ArchiveError("give --profile/--run (a run's files) or --gguf (a file), not both")
        from xling.models.layout import ModelFiles
        from xling.models.prompts import make_prompt

        if (args.prompt_format or "plain") != "plain":
            raise ArchiveError("--gguf takes --prompt-format plain (chat needs a profile's model)")
        files = ModelFiles(
            "llamacpp-q4_k_m+lora" if args.lora else "llamacpp-gguf",
            Path(args.gguf).resolve(),
            Path(args.lora).resolve() if args.lora else None,
        )
        return engine.ArchiveModel.from_files(files, make_prompt("plain"), **kw)
    if args.lora:
        raise ArchiveError("--lora goes with --gguf")
    if not (args.profile or args.run):
        raise ArchiveError("name the model: --profile NAME --variant V, or --gguf FILE")
    from xling import config
    from xling.run.state import run_profile_name

    run_name = args.run or args.profile
    profile = args.profile or run_profile_name(run_name)
    prof = config.load_profile(profile)
    variants = prof.common.get("variants") or {}
    if args.variant != "base" and args.variant not in variants:
        raise ArchiveError(
            f"--variant {args.variant}: profile {profile} has {', '.join(variants)} "
            "(or base, the untuned model)"
        )
    return engine.run_model(
        run_name,
        args.variant,
        args.backend,
        base_model=prof.common.get("base_model"),
        prompt_format=args.prompt_format or prof.common.get("prompt_format") or "plain",
        **kw,
    )


def run(args) -> int:
    inputs = list(args.inputs) + list(args.input)
    if not inputs:
        raise ArchiveError("no input: give files or globs (or --input PATTERN)")
    keep = tuple(c.strip() for c in args.keep.split(",") if c.strip())
    slurm = None
    if args.cluster == "slurm":
        if args.scheduler:
            raise ArchiveError("--scheduler and --cluster slurm: choose one")
        if not args.cluster_config:
            raise ArchiveError("--cluster slurm needs --cluster-config YAML (site settings)")
        slurm = args.cluster_config
        engine.slurm_settings(slurm)  # refuse a bad file before the model is hashed
    elif args.cluster_config:
        raise ArchiveError("--cluster-config goes with --cluster slurm")
    for name in ("workers", "threads_per_worker", "batch_size", "max_post_tokens"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ArchiveError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
    engine.expand_inputs(inputs)  # no file matches: say so before opening anything
    model = resolve_model(args)
    result = engine.classify_archive(
        inputs,
        args.output,
        model,
        text_column=args.text_column,
        id_column=args.id_column,
        keep=keep,
        chunk_rows=args.chunk_rows,
        scheduler=args.scheduler,
        slurm=slurm,
        workers=args.workers,
        threads_per_worker=args.threads_per_worker,
        dashboard_address=args.dashboard_address,
        progress=not args.no_progress,
    )
    figure = write_figure(result)
    print()
    print(result.describe())
    if figure:
        print(f"figure: {figure}")
    shown = result.summary[result.summary["day"] == "all"]
    if len(shown):
        print()
        print(shown.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    if not result.ok:
        print(
            f"\n{result.refused} rows or files refused: {result.output / 'errors.parquet'}",
            file=sys.stderr,
        )
        return 1
    return 0


def write_figure(result) -> Path | None:
    """OUTPUT/summary.png (and .pdf), from the summary table; None when nothing was scored."""
    if result.summary.empty:
        return None
    import matplotlib.pyplot as plt

    from xling.plots.archive import plot_archive_summary

    fig = plot_archive_summary(result.summary)
    path = result.output / "summary.png"
    for ext in ("png", "pdf"):
        out = path.with_suffix(f".{ext}")
        atomic_write(
            out, lambda tmp, ext=ext: fig.savefig(tmp, dpi=150, bbox_inches="tight", format=ext)
        )
    plt.close(fig)
    return path


def main(argv=None) -> int:
    import xling  # noqa: F401  (offline mode before any Hugging Face library loads)

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "classify":
        argv = argv[1:]
    elif argv and argv[0].isidentifier() and not os.path.exists(argv[0]):
        # a bare word that is no file: a command this tool does not have
        print(f"xling: unknown command {argv[0]!r} (commands: classify)", file=sys.stderr)
        return 2
    args = parser().parse_args(argv)
    try:
        return run(args)
    except (ArchiveError, ConfigError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
