"""``python -m efficientnet_tpu.doctor``: the command and its checks live in efficientnet_tpu/cli/doctor.py."""

import sys

from efficientnet_tpu.cli.doctor import main

if __name__ == "__main__":
    sys.exit(main())
