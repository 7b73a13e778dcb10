"""Keras layers the zoo needs that Keras does not ship. Imported only when a Keras zoo model is built."""

from __future__ import annotations

from typing import Any

from onnxmend.core.deps import require

keras = require("keras")  # through the helper: quiet TensorFlow start-up, a clear error without it
tf = require("tensorflow")


class ContribLayerNorm(keras.layers.Layer):
    """``tf.contrib.layers.layer_norm`` on NHWC: statistics over (H, W, C), affine over C only.

    Written with the TF ops tf.contrib used (``tf.nn.moments`` + ``tf.nn.batch_normalization``), so the
    exported graph is the decomposition real ported models carry.
    """

    def __init__(self, epsilon: float = 1e-12, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.epsilon = epsilon

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        channels = int(input_shape[-1])
        self.gamma = self.add_weight(name="gamma", shape=(channels,), initializer="ones")
        self.beta = self.add_weight(name="beta", shape=(channels,), initializer="zeros")

    def call(self, x: Any) -> Any:
        mean, variance = tf.nn.moments(x, axes=[1, 2, 3], keepdims=True)
        return tf.nn.batch_normalization(x, mean, variance, self.beta, self.gamma, self.epsilon)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "epsilon": self.epsilon}
