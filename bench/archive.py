"""Classifying an archive: the authors' loop against ``xling classify`` on Dask, in one run.

    .venv/bin/python bench/archive.py [--profile demo] [--variant en] [--posts 2000]

The same posts of the demo archive through (a) the authors' way (one generate call per post,
3 tokens, the answer parsed from the text, the checkpoint file rewritten after every post; one
core), (b) classify_archive with one worker of one thread, (c) one worker per core; posts/s,
peak RSS per worker, scaling efficiency; and the reading/planning memory of a 10x larger archive.
Needs the profile's 02_quantize files (the message says how to make them). Writes
bench/results/<date>-<host>-archive.json and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from xling import bench


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="demo")
    ap.add_argument("--variant", default="en")
    ap.add_argument("--posts", type=int, default=2000, help="posts of the demo archive")
    ap.add_argument("--big-posts", type=int, default=20000, help="the larger archive (memory)")
    ap.add_argument("--chunk-rows", type=int, default=256)
    ap.add_argument("--workers", type=int, default=None, help="(c)'s workers; default: cores")
    ap.add_argument(
        "--authors-posts",
        type=int,
        default=None,
        help="(a) on the first N posts only (default: all; one call per post, so its rate does "
        "not depend on N)",
    )
    ap.add_argument("--out", default=None, help="results folder (default bench/results)")
    ap.add_argument("--show", default=None, help="print the tables of a results file; run nothing")
    args = ap.parse_args(argv)
    if args.show:
        show(json.loads(Path(args.show).read_text()))
        return 0
    try:
        result = bench.archive_benchmark(
            args.profile,
            args.variant,
            n_posts=args.posts,
            big_posts=args.big_posts,
            chunk_rows=args.chunk_rows,
            workers=args.workers,
            authors_posts=args.authors_posts,
        )
    except FileNotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    path = bench.write_result(result, args.out)
    print()
    show(result)
    print(f"\nwritten {path} ({result['wall_seconds']:.0f} s)")
    return 0


def show(result: dict) -> None:
    print(bench.markdown_table(pd.DataFrame(result["table"]), bench.ARCHIVE_COLUMNS))
    print()
    for line in bench.describe_archive(result):
        print(line)


if __name__ == "__main__":
    sys.exit(main())
