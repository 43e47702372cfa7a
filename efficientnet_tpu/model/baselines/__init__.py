"""The two baselines of seed 003's CIFAR comparison: a small ConvNet and ResNet-152.

`specs.py` holds their specs and variant names (no Keras, loaded with the
other families); `builders.py` their Keras builders, which the model builder
loads. This package's own import loads neither.
"""
