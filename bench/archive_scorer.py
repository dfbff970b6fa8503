"""Where the archive's time per post goes, without Dask: the authors' generate call against the
archive's scorer, one thread, in one process taking turns over the same posts.

    .venv/bin/python bench/archive_scorer.py [--profile demo] [--variant en] [--posts 96]

Reads bench/archive.py's (b)/(a) apart: how much comes from not generating, and how much from
scoring many posts per decode. Writes bench/results/<date>-<host>-archive-breakdown.json.
"""

from __future__ import annotations

import argparse
import sys

from xling import bench


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="demo")
    ap.add_argument("--variant", default="en")
    ap.add_argument("--posts", type=int, default=96)
    ap.add_argument("--rounds", type=int, default=3)
    bench.add_result_args(ap)
    args = ap.parse_args(argv)
    return bench.run_or_show(
        args.show,
        args.out,
        lambda: bench.archive_scorer_breakdown(
            args.profile, args.variant, n_posts=args.posts, rounds=args.rounds
        ),
        bench.describe_breakdown,
    )


if __name__ == "__main__":
    sys.exit(main())
