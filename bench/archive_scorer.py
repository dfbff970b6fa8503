"""Where the archive's time per post goes, without Dask: the authors' generate call against the
archive's scorer, one thread, in one process taking turns over the same posts.

    .venv/bin/python bench/archive_scorer.py [--profile demo] [--variant en] [--posts 96]

Reads bench/archive.py's (b)/(a) apart: how much comes from not generating, and how much from
scoring many posts per decode. Writes bench/results/<date>-<host>-archive-breakdown.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from xling import bench


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="demo")
    ap.add_argument("--variant", default="en")
    ap.add_argument("--posts", type=int, default=96)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", default=None, help="results folder (default bench/results)")
    ap.add_argument("--show", default=None, help="print a results file; run nothing")
    args = ap.parse_args(argv)
    if args.show:
        result = json.loads(Path(args.show).read_text())
    else:
        try:
            result = bench.archive_scorer_breakdown(
                args.profile, args.variant, n_posts=args.posts, rounds=args.rounds
            )
        except FileNotFoundError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        print(f"written {bench.write_result(result, args.out)}")
    for line in bench.describe_breakdown(result):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
