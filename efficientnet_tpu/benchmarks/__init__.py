"""Benchmarks: one timing toolkit and the command-line tools built on it.

  timing         wall and CPU time, medians, alternating rounds, the machine (no TensorFlow)
  model_speed    a model's inference latency and training throughput (TensorFlow)
  cli            the tools' shared flag, error and exit-status convention
  keras_compare  our model against its Keras Applications twin
  speed          the study variants' CPU inference speed against B0
  data           the input pipeline against a bare decode-and-resize
  training       our training loop against Keras fit; steps_per_loop 1 against 10

Run a tool as `python -m efficientnet_tpu.benchmarks.NAME`; figures go to BENCHMARKS.md.
"""
