"""Reading order of detected words, in TF ops: lines from top to bottom, words from left to right in a line.

Words are taken by the height of their centres; a word starts a new line when its centre lies lower than the
first word of the current line by more than half the taller of the two words' heights (a word's height is
the mean length of its left and right edges, so a tilted word counts with its own height, not its bounding
box's). Within a line, words go by the x of their centres. Invalid (padding) slots keep their places at the
end.
"""

import numpy as np
import tensorflow as tf


def _centres_and_heights(quads):
    q = tf.convert_to_tensor(quads, tf.float32)
    centre = tf.reduce_mean(q, axis=-2)
    height = 0.5 * (tf.norm(q[..., 3, :] - q[..., 0, :], axis=-1) + tf.norm(q[..., 2, :] - q[..., 1, :], axis=-1))
    return centre[..., 0], centre[..., 1], height


def reading_order(quads, valid):
    """The permutation putting each image's words in reading order.

    Args:
      quads: `[B, K, 4, 2]` corners in pixels (ICDAR order).
      valid: bool `[B, K]`; valid words come first in the result, in reading order, then the others.

    Returns:
      int32 `[B, K]` indices into K (gather with `batch_dims=1`).
    """
    valid = tf.convert_to_tensor(valid, tf.bool)
    cx, cy, height = _centres_and_heights(quads)
    big = tf.constant(np.finfo(np.float32).max, tf.float32)
    by_y = tf.argsort(tf.where(valid, cy, big), axis=1, stable=True)
    cy_s, cx_s, h_s = (tf.gather(t, by_y, batch_dims=1) for t in (cy, cx, height))
    valid_s = tf.gather(valid, by_y, batch_dims=1)

    def step(state, element):
        line, anchor_y, anchor_h = state
        y, h = element
        new = y - anchor_y > 0.5 * tf.maximum(anchor_h, h)
        return (
            tf.where(new, line + 1, line),
            tf.where(new, y, anchor_y),
            tf.where(new, h, anchor_h),
        )

    batch = tf.shape(cy_s)[0]
    start = (tf.fill([batch], -1), tf.fill([batch], -big), tf.zeros([batch], tf.float32))
    lines, _, _ = tf.scan(step, (tf.transpose(cy_s), tf.transpose(h_s)), initializer=start)
    lines = tf.transpose(lines)
    k = tf.shape(cy_s)[1]
    lines = tf.where(valid_s, lines, k)  # padding after every line
    # Lexicographic (line, x): sort by x, then stably by line.
    by_x = tf.argsort(tf.where(valid_s, cx_s, big), axis=1, stable=True)
    by_line = tf.argsort(tf.cast(tf.gather(lines, by_x, batch_dims=1), tf.float32), axis=1, stable=True)
    within = tf.gather(by_x, by_line, batch_dims=1)
    return tf.cast(tf.gather(by_y, within, batch_dims=1), tf.int32)
