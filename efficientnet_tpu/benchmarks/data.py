"""``python -m efficientnet_tpu.benchmarks.data``: the tool lives in efficientnet_tpu/cli/benchmarks/data.py."""

import sys

from efficientnet_tpu.cli.benchmarks.data import main

if __name__ == "__main__":
    sys.exit(main())
