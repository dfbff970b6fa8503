"""LoRA fine-tuning speed and memory at a profile's 01_finetune settings, against the FLOP limit.

    .venv/bin/python bench/finetune.py [--profile demo] [--variant en] [--steps 16]

Needs the profile's posts table (00_data). Writes bench/results/<date>-<host>-finetune.json and
prints a markdown table.
"""

from __future__ import annotations

import argparse
import sys

from xling import bench, paths


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="demo")
    ap.add_argument("--variant", default="en")
    ap.add_argument("--steps", type=int, default=16, help="timed steps (after one warm-up step)")
    ap.add_argument("--threads", type=int, default=None, help="default: every core")
    ap.add_argument("--out", default=None, help="results folder (default bench/results)")
    args = ap.parse_args(argv)
    if not (paths.RUNS / args.profile / "posts.csv").exists():
        cmd = "./run_all.sh" + ("" if args.profile == "demo" else f" --profile {args.profile}")
        print(
            f"error: no posts table for {args.profile}; make it with: {cmd} --only 00_data",
            file=sys.stderr,
        )
        return 2
    result = bench.finetune_benchmark(args.profile, args.variant, args.steps, args.threads)
    path = bench.write_result(result, args.out)
    print()
    bench.print_finetune(result)
    print(f"\nwritten {path} ({result['wall_seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
