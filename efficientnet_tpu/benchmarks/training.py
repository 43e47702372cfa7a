"""``python -m efficientnet_tpu.benchmarks.training``: the tool lives in efficientnet_tpu/cli/benchmarks/training.py."""

import sys

from efficientnet_tpu.cli.benchmarks.training import main

if __name__ == "__main__":
    sys.exit(main())
