"""Benchmarks: one timing toolkit (also the studies' speed measurements) and the tools' entry points.

  timing         wall and CPU time, medians, alternating rounds, the machine (no TensorFlow)
  model_speed    a model's inference latency and training throughput (TensorFlow)
  keras_compare, speed, data, training
                 entry shims of the tools, which live in efficientnet_tpu/cli/benchmarks/

Run a tool as `python -m efficientnet_tpu.benchmarks.NAME`; figures go to BENCHMARKS.md.
"""
