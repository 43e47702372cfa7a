"""``python -m efficientnet_tpu.benchmarks.speed``: the tool lives in efficientnet_tpu/cli/benchmarks/speed.py."""

import sys

from efficientnet_tpu.cli.benchmarks.speed import main

if __name__ == "__main__":
    sys.exit(main())
