"""``python -m efficientnet_tpu.study``: the command lives in efficientnet_tpu/cli/study.py."""

from efficientnet_tpu.cli.study import define_flags, execute, main, main_cli  # noqa: F401

if __name__ == "__main__":
    main()
