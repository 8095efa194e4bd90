"""LS-ED: the edit-distance embedding h_phi over character-probability matrices z `[L, |A|]`.

1D convolutions run along the sequence with the alphabet as channels, so local insertions and deletions
shift features rather than scramble them; a dense layer then maps the flattened features to a fixed-size
vector. No BatchNorm: the surrogate's gradient penalty needs per-sample gradients (LayerNorm is per-sample).
"""

import keras


@keras.saving.register_keras_serializable(package="tfls")
class EditDistanceEmbedding(keras.Model):
    """`[N, L, |A|]` -> `[N, embedding_dim]`.

    Args:
      filters: output channels of each Conv1D layer.
      kernel_size: width of every convolution along the sequence.
      embedding_dim: size of the output vector.
      layer_norm: LayerNorm after each convolution (per sample, so gradient-penalty safe).
    """

    def __init__(self, filters=(64, 64, 64), kernel_size=3, embedding_dim=64, layer_norm=True, **kwargs):
        super().__init__(**kwargs)
        self.filters = tuple(int(f) for f in filters)
        self.kernel_size = int(kernel_size)
        self.embedding_dim = int(embedding_dim)
        self.layer_norm = bool(layer_norm)
        # One Sequential rather than Python lists of layers: tf.train.Checkpoint (the job's weight files)
        # does not follow Keras 3's tracked lists, so layers held only in a list were never saved.
        self.body = keras.Sequential(name="body")
        for f in self.filters:
            self.body.add(keras.layers.Conv1D(f, self.kernel_size, padding="same"))
            if self.layer_norm:
                self.body.add(keras.layers.LayerNormalization())
            self.body.add(keras.layers.Activation("elu"))
        self.flatten = keras.layers.Flatten()
        self.project = keras.layers.Dense(self.embedding_dim)

    def call(self, z):
        return self.project(self.flatten(self.body(z)))

    def get_config(self):
        config = super().get_config()
        config.update(
            filters=self.filters,
            kernel_size=self.kernel_size,
            embedding_dim=self.embedding_dim,
            layer_norm=self.layer_norm,
        )
        return config
