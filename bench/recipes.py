"""Fine-tuning recipes read against the authors' real tweets (issue 25): each recipe's variants
trained on the profile's posts and scored as 03 scores them, on this run's test posts and on the
authors' tweets (authors_test), with each label's recall and the floor.

    .venv/bin/python bench/recipes.py [--profile demo] [--recipe NAME ...] [--variant V ...]

Needs the profile's 00_data (with the authors' data: --paper-data or data/paper), 01_finetune and
02_quantize. Recipes: xling.bench.RECIPES. Writes bench/results/<date>-<host>-recipes.json.
"""

from __future__ import annotations

import argparse
import sys

from xling import bench


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="demo")
    ap.add_argument("--recipe", action="append", choices=list(bench.RECIPES))
    ap.add_argument("--variant", action="append")
    bench.add_result_args(ap)
    args = ap.parse_args(argv)
    return bench.run_or_show(
        args.show,
        args.out,
        lambda: bench.recipe_search(args.profile, args.recipe, args.variant),
        bench.describe_recipes,
    )


if __name__ == "__main__":
    sys.exit(main())
