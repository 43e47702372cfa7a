"""Small Keras 3 layers every EfficientNet block is made of.

Only `keras` and `keras.ops` are used here, so the same layers run on Keras'
TensorFlow and JAX backends.
"""

from __future__ import annotations

from typing import Any, Sequence

import keras
from keras import ops

# The normalization constants and the activation type live with the specs (no Keras there).
from efficientnet_tpu.model.specs import IMAGENET_MEAN_RGB, IMAGENET_STD_RGB, ActivationSpec  # noqa: F401

# The reference initialisers (tensorflow/tpu efficientnet_model.py): He-style
# variance scaling over fan_out for convolutions, a small uniform one for the
# classifier.
CONV_INITIALIZER = {
    "class_name": "VarianceScaling",
    "config": {"scale": 2.0, "mode": "fan_out", "distribution": "truncated_normal"},
}
DENSE_INITIALIZER = {
    "class_name": "VarianceScaling",
    "config": {"scale": 1.0 / 3.0, "mode": "fan_out", "distribution": "uniform"},
}


@keras.saving.register_keras_serializable(package="efficientnet_tpu")
class Swish(keras.layers.Layer):
    """x * sigmoid(beta * x); beta = 1 is SiLU, the activation EfficientNet uses.

    A trainable beta (Ramachandran et al.) is an option of the study; with the
    default fixed beta = 1 the layer calls the fused `silu` kernel.
    """

    def __init__(self, beta: float = 1.0, trainable_beta: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.beta = float(beta)
        self.trainable_beta = bool(trainable_beta)
        if self.trainable_beta:
            # A scalar needs no input shape: creating it here means every block that
            # holds a Swish has all its weights from construction, not after a first call.
            self.beta_weight = self.add_weight(
                name="beta",
                shape=(),
                initializer=keras.initializers.Constant(self.beta),
                trainable=True,
            )

    def call(self, inputs):
        if self.trainable_beta:
            beta = ops.cast(self.beta_weight, inputs.dtype)
            return inputs * ops.sigmoid(beta * inputs)
        if self.beta == 1.0:
            return ops.silu(inputs)
        return inputs * ops.sigmoid(self.beta * inputs)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "beta": self.beta, "trainable_beta": self.trainable_beta}


ACTIVATIONS = ("swish", "relu6", "relu", "sigmoid")


def make_activation(spec: ActivationSpec, name: str | None = None) -> keras.layers.Layer:
    """Builds an activation layer from a name or a `{"name": "swish", "beta": ..}` dict.

    Blocks keep the spec (a string or small dict) in their config, so a saved
    model rebuilds exactly the activation it was trained with.
    """
    if isinstance(spec, dict):
        kind = spec.get("name")
        if kind != "swish":
            raise ValueError(f"Only swish takes options, got activation spec {spec!r}.")
        return Swish(
            beta=spec.get("beta", 1.0), trainable_beta=spec.get("trainable_beta", False), name=name
        )
    if spec == "swish":
        return Swish(name=name)
    if spec == "relu6":
        return keras.layers.ReLU(max_value=6.0, name=name)
    if spec == "relu":
        return keras.layers.ReLU(name=name)
    if spec == "sigmoid":
        return keras.layers.Activation("sigmoid", name=name)
    raise ValueError(f"Unknown activation {spec!r}; valid choices: {', '.join(ACTIVATIONS)}.")


def conv2d(filters: int, kernel_size: int, strides: int = 1, *, name: str, use_bias: bool = False):
    """A convolution with the reference conventions: TF "SAME" padding, no bias before BN."""
    return keras.layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding="same",
        use_bias=use_bias,
        kernel_initializer=CONV_INITIALIZER,
        name=name,
    )


def depthwise_conv2d(kernel_size: int, strides: int = 1, *, name: str):
    """A depthwise convolution with the reference conventions."""
    return keras.layers.DepthwiseConv2D(
        kernel_size,
        strides=strides,
        padding="same",
        use_bias=False,
        depthwise_initializer=CONV_INITIALIZER,
        name=name,
    )


def batch_norm(momentum: float, epsilon: float, synchronized: bool, *, name: str):
    """Batch norm; `synchronized` (TensorFlow backend only) averages statistics over replicas."""
    kwargs: dict[str, Any] = {"synchronized": True} if synchronized else {}
    return keras.layers.BatchNormalization(momentum=momentum, epsilon=epsilon, name=name, **kwargs)


@keras.saving.register_keras_serializable(package="efficientnet_tpu")
class SqueezeExcite(keras.layers.Layer):
    """Squeeze-and-excitation: a per-channel gate computed from the global average.

    The squeeze width is given by the caller (EfficientNet uses
    max(1, int(C_in * 0.25)) of the *block's* input, not of the expanded width),
    which is why it is an argument and not a ratio.
    """

    def __init__(
        self,
        channels: int,
        squeeze_channels: int,
        activation: ActivationSpec = "swish",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.channels = int(channels)
        self.squeeze_channels = int(squeeze_channels)
        self.activation = activation
        self.se_reduce = conv2d(self.squeeze_channels, 1, name="se_reduce", use_bias=True)
        self.se_act = make_activation(activation, name="se_activation")
        self.se_expand = conv2d(self.channels, 1, name="se_expand", use_bias=True)

    def build(self, input_shape):
        pooled = (input_shape[0], 1, 1, input_shape[-1])
        self.se_reduce.build(pooled)
        self.se_expand.build((input_shape[0], 1, 1, self.squeeze_channels))

    def call(self, inputs):
        gate = ops.mean(inputs, axis=(1, 2), keepdims=True)
        gate = self.se_expand(self.se_act(self.se_reduce(gate)))
        return inputs * ops.sigmoid(gate)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "channels": self.channels,
            "squeeze_channels": self.squeeze_channels,
            "activation": self.activation,
        }


@keras.saving.register_keras_serializable(package="efficientnet_tpu")
class StochasticDepth(keras.layers.Layer):
    """Drops the residual branch of whole examples with probability `rate` during training.

    Survivors are scaled by 1 / (1 - rate) so the expected output is unchanged
    and inference needs no rescaling.
    """

    def __init__(self, rate: float, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"StochasticDepth rate must be in [0, 1), got {rate}.")
        self.rate = float(rate)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed) if rate > 0 else None

    def call(self, inputs, training=None):
        if not training or self.rate == 0.0:
            return inputs
        keep = 1.0 - self.rate
        batch = ops.shape(inputs)[0]
        noise = keras.random.uniform(
            (batch, 1, 1, 1), seed=self.seed_generator, dtype=inputs.dtype
        )
        mask = ops.floor(keep + noise)
        return inputs * (mask / keep)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


@keras.saving.register_keras_serializable(package="efficientnet_tpu")
class Normalize(keras.layers.Layer):
    """(x - mean) / std with fixed constants, in float32 even under mixed precision.

    The constants are configuration, not weights: loading the Keras
    Applications files (which store the standard deviation where a variance
    belongs) can never corrupt them.
    """

    def __init__(
        self,
        mean: Sequence[float] = IMAGENET_MEAN_RGB,
        std: Sequence[float] = IMAGENET_STD_RGB,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)

    def call(self, inputs):
        inputs = ops.cast(inputs, self.compute_dtype)
        mean = ops.convert_to_tensor(self.mean, dtype=self.compute_dtype)
        inv_std = ops.convert_to_tensor([1.0 / s for s in self.std], dtype=self.compute_dtype)
        return (inputs - mean) * inv_std

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "mean": list(self.mean), "std": list(self.std)}
