"""Classification speed, memory and cost of every backend, side by side in one run.

    .venv/bin/python bench/classify.py [--profile demo] [--variant en] [--posts 200]

Needs the profile's 00_data, 01_finetune and 02_quantize outputs (the message says how to make
them). Writes bench/results/<date>-<host>-classify.json and prints markdown tables.
"""

from __future__ import annotations

import argparse
import sys

from xling import bench


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="demo")
    ap.add_argument("--variant", default="en")
    ap.add_argument("--posts", type=int, default=200, help="posts classified per configuration")
    ap.add_argument("--seed", type=int, default=1234, help="seeds the choice of posts")
    ap.add_argument(
        "--price-per-hour",
        type=float,
        default=0.10,
        help="machine price in $/hour for the cost table (an assumption: set your own)",
    )
    ap.add_argument("--sweep-posts", type=int, default=48, help="posts for the batch-size sweep")
    ap.add_argument("--threads", type=int, default=None, help="default: every core")
    ap.add_argument("--out", default=None, help="results folder (default bench/results)")
    args = ap.parse_args(argv)
    try:
        result = bench.classify_benchmark(
            args.profile,
            args.variant,
            n_posts=args.posts,
            seed=args.seed,
            price_per_hour=args.price_per_hour,
            sweep_posts=args.sweep_posts,
            threads=args.threads,
        )
    except FileNotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    path = bench.write_result(result, args.out)
    print()
    bench.print_classify(result)
    print(f"\nwritten {path} ({result['wall_seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
