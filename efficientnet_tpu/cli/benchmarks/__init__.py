"""The benchmark command-line tools (``python -m efficientnet_tpu.benchmarks.NAME``), built on
efficientnet_tpu.benchmarks' timing toolkit and the shared command-line layer (``cli.common``).

  keras_compare  our model against its Keras Applications twin
  speed          the study variants' CPU inference speed against B0
  data           the input pipeline against a bare decode-and-resize
  training       our training loop against Keras fit; steps_per_loop 1 against 10
"""
