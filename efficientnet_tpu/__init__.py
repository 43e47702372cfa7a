"""efficientnet_tpu: EfficientNet and its research variants in Keras 3."""
