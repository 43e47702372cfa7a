"""Lets ``python -m efficientnet_tpu.export --model_dir=... --export_dir=...`` run."""

from efficientnet_tpu.export.cli import run

if __name__ == "__main__":
    run()
