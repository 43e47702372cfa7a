"""``python -m efficientnet_tpu.benchmarks.keras_compare``: the tool lives in efficientnet_tpu/cli/benchmarks/keras_compare.py."""

import sys

from efficientnet_tpu.cli.benchmarks.keras_compare import main

if __name__ == "__main__":
    sys.exit(main())
