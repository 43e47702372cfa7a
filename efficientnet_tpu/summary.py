"""``python -m efficientnet_tpu.summary``: the command and its functions live in efficientnet_tpu/cli/summary.py."""

if __name__ == "__main__":
    # As a program: TensorFlow (under Keras) starts without its start-up lines, as in train.
    from efficientnet_tpu.tf_startup import import_tensorflow

    import_tensorflow()

from efficientnet_tpu.cli.summary import (StageRow, describe, describe_spec, format_all, format_table,  # noqa: E402,F401
                                          main, main_cli, stage_table, summarize_all)

if __name__ == "__main__":
    main()
