"""``python -m efficientnet_tpu.data.make_tfrecords``: the command lives in efficientnet_tpu/cli/make_tfrecords.py."""

import sys

if __name__ == "__main__":
    # As a program: TensorFlow starts without its start-up lines, as in train.
    from efficientnet_tpu.tf_startup import import_tensorflow

    import_tensorflow()

from efficientnet_tpu.cli.make_tfrecords import convert, main, make_example, shard_name, write_split  # noqa: E402,F401

if __name__ == "__main__":
    sys.exit(main())
