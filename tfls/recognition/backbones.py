"""Feature extractors (VGG, ResNet) that turn a text image into a left-to-right feature sequence.

Both halve the width twice and the height down to 1 (mean over what is left), so a 100-pixel-wide input
gives a 25-step sequence of `channels[-1]` features.
"""

import keras


def _conv_bn_relu(x, filters, kernel=3, name=None):
    x = keras.layers.Conv2D(filters, kernel, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = keras.layers.BatchNormalization(synchronized=True, name=f"{name}_bn")(x)
    return keras.layers.ReLU(name=f"{name}_relu")(x)


def _to_sequence(x, name):
    # Height collapses by averaging, width becomes time: [B, H, W, C] -> [B, W, C].
    return keras.layers.Lambda(lambda t: keras.ops.mean(t, axis=1), name=f"{name}_to_sequence")(x)


def vgg_backbone(input_shape, channels=(64, 128, 256, 512), name="vgg"):
    """CRNN-style VGG: conv blocks with 2x2, 2x2, 2x1, 2x1 pooling.

    Args:
      input_shape: `(H, W, C)` of the (rectified) images.
      channels: widths of the four blocks (the last two have two convs each).
      name: model name.

    Returns:
      keras.Model `[B, H, W, C] -> [B, W / 4, channels[-1]]`.
    """
    inputs = keras.Input(input_shape)
    x = _conv_bn_relu(inputs, channels[0], name=f"{name}_b1")
    x = keras.layers.MaxPooling2D(2, name=f"{name}_p1")(x)
    x = _conv_bn_relu(x, channels[1], name=f"{name}_b2")
    x = keras.layers.MaxPooling2D(2, name=f"{name}_p2")(x)
    x = _conv_bn_relu(x, channels[2], name=f"{name}_b3a")
    x = _conv_bn_relu(x, channels[2], name=f"{name}_b3b")
    x = keras.layers.MaxPooling2D((2, 1), name=f"{name}_p3")(x)
    x = _conv_bn_relu(x, channels[3], name=f"{name}_b4a")
    x = _conv_bn_relu(x, channels[3], name=f"{name}_b4b")
    x = keras.layers.MaxPooling2D((2, 1), name=f"{name}_p4")(x)
    return keras.Model(inputs, _to_sequence(x, name), name=name)


def _basic_block(x, filters, name):
    shortcut = x
    y = _conv_bn_relu(x, filters, name=f"{name}_a")
    y = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_b_conv")(y)
    y = keras.layers.BatchNormalization(synchronized=True, name=f"{name}_b_bn")(y)
    if shortcut.shape[-1] != filters:
        shortcut = keras.layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_proj")(shortcut)
        shortcut = keras.layers.BatchNormalization(synchronized=True, name=f"{name}_proj_bn")(shortcut)
    return keras.layers.ReLU(name=f"{name}_out")(keras.layers.Add(name=f"{name}_add")([y, shortcut]))


def resnet_backbone(input_shape, channels=(32, 64, 128, 256), blocks=(1, 2, 5, 3), name="resnet"):
    """ASTER/FAN-style ResNet: four stages of basic blocks with 2x2, 2x2, 2x1, 2x1 pooling before them.

    Args:
      input_shape: `(H, W, C)`.
      channels: stage widths (the paper-scale model uses 64, 128, 256, 512).
      blocks: basic blocks per stage (paper: 1, 2, 5, 3).
      name: model name.

    Returns:
      keras.Model `[B, H, W, C] -> [B, W / 4, channels[-1]]`.
    """
    inputs = keras.Input(input_shape)
    x = _conv_bn_relu(inputs, channels[0] // 2, name=f"{name}_stem")
    pools = (2, 2, (2, 1), (2, 1))
    for stage, (filters, count, pool) in enumerate(zip(channels, blocks, pools)):
        x = keras.layers.MaxPooling2D(pool, name=f"{name}_pool{stage}")(x)
        for i in range(count):
            x = _basic_block(x, filters, name=f"{name}_s{stage}_{i}")
        x = _conv_bn_relu(x, filters, name=f"{name}_s{stage}_out")
    return keras.Model(inputs, _to_sequence(x, name), name=name)


def bilstm_encoder(input_dim, hidden, layers=2, name="bilstm"):
    """Sequence modelling: `layers` x (BiLSTM(hidden) -> Dense(hidden)), as in the four-stage framework.

    Returns:
      keras.Model `[B, T, input_dim] -> [B, T, hidden]`.
    """
    inputs = keras.Input((None, input_dim))
    x = inputs
    for i in range(layers):
        x = keras.layers.Bidirectional(keras.layers.LSTM(hidden, return_sequences=True), name=f"{name}{i}")(x)
        x = keras.layers.Dense(hidden, name=f"{name}{i}_proj")(x)
    return keras.Model(inputs, x, name=name)
