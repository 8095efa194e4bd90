"""Synthetic scenes: exact quadrilaterals around the drawn ink, don't-cares, determinism."""

import numpy as np
import shapely

from tfls.detection import scenes


def test_ink_lies_inside_quads_and_quads_hold_ink():
    rng = np.random.default_rng(0)
    for _ in range(5):
        background = np.random.default_rng(1)
        image, quads, texts = scenes.render_scene(rng, size=96, max_words=3, dontcare_prob=0.0)
        assert image.shape == (96, 96, 3) and image.dtype == np.uint8
        assert len(quads) == len(texts) >= 1 and "###" not in texts
        del background
        for quad in quads:
            poly = shapely.Polygon(quad)
            assert poly.is_valid and poly.area > 20
            assert np.all((quad > -1) & (quad < 97))


def test_word_pixels_differ_from_background_inside_boxes_only():
    rng = np.random.default_rng(3)
    image, quads, _ = scenes.render_scene(rng, size=96, max_words=1, dontcare_prob=0.0, max_angle_deg=40)
    ys, xs = np.mgrid[0:96, 0:96] + 0.5
    inside = shapely.contains_xy(shapely.Polygon(quads[0]).buffer(1.5), xs, ys)
    # The word colour contrasts with the background: the largest deviations from a local smooth estimate
    # lie in the box.
    grey = image.astype(float).mean(-1)
    smooth = np.copy(grey)
    for axis in (0, 1):
        smooth = (np.roll(smooth, 3, axis) + smooth + np.roll(smooth, -3, axis)) / 3
    deviation = np.abs(grey - smooth)
    strong = deviation > np.percentile(deviation, 99)
    assert inside[strong].mean() > 0.8


def test_dontcare_words_and_determinism():
    a = scenes.render_scene(np.random.default_rng(5), size=96, max_words=4, dontcare_prob=1.0)
    b = scenes.render_scene(np.random.default_rng(5), size=96, max_words=4, dontcare_prob=1.0)
    assert a[2] and all(t == "###" for t in a[2])
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
