"""``python -m efficientnet_tpu.train``: the command lives in efficientnet_tpu/cli/train.py."""

from efficientnet_tpu.cli.train import (EXIT_DIVERGED, EXIT_INTERNAL, EXIT_OK, EXIT_USAGE, FLAGS,  # noqa: F401
                                        config_from_flags, define_flags, execute, main, main_cli)

if __name__ == "__main__":
    main()
