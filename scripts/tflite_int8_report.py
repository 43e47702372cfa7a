"""Float vs int8 TFLite of one run: sizes and top-1 on its eval split (the BENCHMARKS.md entry).

    python scripts/tflite_int8_report.py runs/digits /tmp/tflite_report
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("error: usage: python scripts/tflite_int8_report.py MODEL_DIR OUT_DIR", file=sys.stderr)
        return 2
    from efficientnet_tpu.export.from_run import export_run
    from efficientnet_tpu.export.tflite_eval import tflite_top1

    model_dir, out = argv
    rows = []
    for fmt in ("tflite", "tflite_int8"):
        path, record = export_run(model_dir, os.path.join(out, fmt), format=fmt)
        top1, count = tflite_top1(path, record)
        rows.append((fmt, record.get("quantization", "none"), os.path.getsize(path), top1, count))
    for fmt, scheme, size, top1, count in rows:
        print(f"{fmt:12s} {scheme:14s} {size / 1e6:7.2f} MB  top-1 {top1:.2%} on {count} images")
    print(f"int8 - float: {100 * (rows[1][3] - rows[0][3]):+.2f} points")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    sys.exit(main(sys.argv[1:]))
