"""Exponential moving average of the model's weights, as the reference recipe keeps it.

Written here rather than taken from Keras' ``use_ema`` optimizer option for
three reasons: the reference warms the decay up (``min(decay, (1 + n) /
(10 + n))``), so short runs get a useful average instead of one dominated by
the random initialisation; it averages the batch-norm moving statistics too,
not only trainable weights; and the averages live in their own checkpoint
object, so export can restore them without rebuilding the optimizer.
"""

from __future__ import annotations

import keras
import tensorflow as tf


def averaged_weights(model: keras.Model) -> list:
    """The float weights of a model (trainable and batch-norm statistics), in a stable order."""
    return [w for w in model.weights if tf.as_dtype(w.dtype).is_floating]


def _tf_variable(variable):
    return variable.value if isinstance(variable, keras.Variable) else variable


class WeightAverage(tf.Module):
    """Shadow copies of ``variables`` updated as ``decay * shadow + (1 - decay) * value``.

    Create it inside ``strategy.scope()`` and call ``update`` from the
    per-replica step function: the update is done once per variable through
    the strategy, like Keras' own optimizer updates, so it works under
    MirroredStrategy and TPUStrategy alike.
    """

    def __init__(self, variables: list, decay: float, name: str = "weight_average") -> None:
        super().__init__(name=name)
        if not 0.0 < decay <= 1.0:
            raise ValueError(f"EMA decay must be in (0, 1], got {decay}")
        self.decay = float(decay)
        # Not a checkpoint dependency: the model saves its own weights.
        object.__setattr__(self, "_sources", [_tf_variable(v) for v in variables])
        self.averages = [
            tf.Variable(
                tf.identity(_tf_variable(v)),
                trainable=False,
                name=f"ema_{i}",
                synchronization=tf.VariableSynchronization.ON_WRITE,
                aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
            )
            for i, v in enumerate(variables)
        ]

    def current_decay(self, num_updates: tf.Tensor) -> tf.Tensor:
        """The warmed-up decay after ``num_updates`` optimizer steps."""
        n = tf.cast(num_updates, tf.float32)
        return tf.minimum(self.decay, (1.0 + n) / (10.0 + n))

    def update(self, num_updates: tf.Tensor) -> None:
        """Moves every average towards its variable (call in replica or cross-replica context)."""
        decay = self.current_decay(num_updates)

        def apply(strategy: tf.distribute.Strategy, decay) -> None:
            # `decay` arrives per replica from merge_call; update() hands each device its own.
            def move(average, value, decay):
                return average.assign(decay * average + (1.0 - decay) * tf.cast(value, average.dtype))

            for average, source in zip(self.averages, self._sources):
                strategy.extended.update(average, move, args=(source, decay), group=False)

        tf.__internal__.distribute.interim.maybe_merge_call(apply, tf.distribute.get_strategy(), decay)

    def swap(self) -> None:
        """Exchanges the model's weights with their averages (call twice to undo).

        Used around evaluation, so the averaged weights are evaluated and the
        raw ones keep training. Run in cross-replica context.
        """
        for average, source in zip(self.averages, self._sources):
            raw = tf.identity(source)
            source.assign(average)
            average.assign(raw)

    def reset(self) -> None:
        """Starts the averages again from the model's current weights (cross-replica context)."""
        for average, source in zip(self.averages, self._sources):
            average.assign(tf.cast(source, average.dtype))

    def copy_to_model(self) -> None:
        """Overwrites the model's weights with their averages (for export)."""
        for average, source in zip(self.averages, self._sources):
            source.assign(average)
