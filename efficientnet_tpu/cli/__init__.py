"""The command-line tools, one module per command, on one shared layer (``common``).

  common          absl flag parsing, the one ``UsageError``, one-line ``error:`` messages, --help, exit statuses
  train           python -m efficientnet_tpu.train: train, evaluate and export from a TrainConfig
  study           python -m efficientnet_tpu.study: run, shard or report a study
  export          python -m efficientnet_tpu.export: export a run's checkpoint
  summary         python -m efficientnet_tpu.summary: a network's stage table, size and cost
  doctor          python -m efficientnet_tpu.doctor: is this machine ready to train?
  make_tfrecords  python -m efficientnet_tpu.data.make_tfrecords: an image folder as TFRecord shards
  benchmarks/     python -m efficientnet_tpu.benchmarks.NAME: keras_compare, speed, data, training

The documented ``python -m`` paths are entry shims that only import from
here, so this package sits above every other part: nothing else imports it.
"""
