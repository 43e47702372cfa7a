"""``python -m efficientnet_tpu.export --model_dir=... --export_dir=...``: the command is efficientnet_tpu/cli/export.py."""

from efficientnet_tpu.cli.export import main

if __name__ == "__main__":
    main()
