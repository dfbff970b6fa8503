"""The measuring half of bench/gpu_check.sh: after the GPU run of notebooks 00-02, the same files on
the GPU and on the CPU, and one JSON of what was measured.

    .venv/bin/python bench/gpu_check.py --run demo --out DIR [--posts 100] [--log DIR/log.txt]

Reads runs/<run>/ (XLING_RUNS) as the GPU run left it: the fine-tuning summary (tokens/s, peak GPU
memory), 02's comparison table, 03's predictions; then scores --posts test posts with the
variant's files on both devices (xling.bench.gpu_agreement) and writes DIR/gpu-check.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from xling import bench, paths


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", default="demo")
    ap.add_argument("--variant", default="en")
    ap.add_argument("--posts", type=int, default=100)
    ap.add_argument("--out", required=True, help="folder for gpu-check.json")
    ap.add_argument("--steps-seconds", default=None, help="JSON of each step's seconds")
    args = ap.parse_args(argv)
    import pandas as pd
    import torch

    run_dir = paths.RUNS / args.run
    result: dict = {
        "benchmark": "gpu-check",
        "date": bench.datetime.now(bench.UTC).isoformat(timespec="seconds"),
        "machine": bench.machine_info(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    summary = run_dir / "adapters" / "summary.csv"
    if summary.exists():
        result["finetune"] = pd.read_csv(summary).to_dict(orient="records")
    meta = run_dir / "adapters" / args.variant / "meta.json"
    if meta.exists():
        m = json.loads(meta.read_text())
        result["finetune_settings"] = m.get("settings")
    comparison = run_dir / "quantize" / "comparison.csv"
    if comparison.exists():
        result["quantize_comparison"] = pd.read_csv(comparison).to_dict(orient="records")
    preds = run_dir / "predictions.csv"
    if preds.exists():
        p = pd.read_csv(preds)
        result["predictions"] = (
            p.assign(correct=p["prediction"] == p["label"])
            .groupby(["variant", "backend", "method"])["correct"]
            .agg(["size", "mean"])
            .reset_index()
            .to_dict(orient="records")
        )
    try:
        result["agreement"] = bench.gpu_agreement(args.run, args.variant, args.posts)
    except Exception as err:  # noqa: BLE001 - recorded, and the exit code says it failed
        result["agreement"] = {"error": f"{type(err).__name__}: {err}"}
    if args.steps_seconds:
        result["steps_seconds"] = json.loads(Path(args.steps_seconds).read_text())
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "gpu-check.json"
    path.write_text(json.dumps(result, indent=1, default=bench._jsonable) + "\n")
    print(f"written {path}")
    return 1 if "error" in result["agreement"] else 0


if __name__ == "__main__":
    sys.exit(main())
