"""Benchmarks: one timing toolkit and the command-line tools built on it.

  timing        wall and CPU time, medians, alternating rounds, the machine (no TensorFlow)
  model_speed   a model's inference latency and training throughput (TensorFlow)
"""
