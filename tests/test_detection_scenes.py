"""Synthetic scenes: exact quadrilaterals around the drawn ink, don't-cares, determinism; photo-sized scenes
(canvas sizes, transcriptions, angles, perspective, the mix's checks, background kinds)."""

import numpy as np
import pytest
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


# ---- photo-sized scenes (SceneRenderer) -------------------------------------------------------------------

WORDS = ["hello", "world", "open", "store", "exit", "cafe", "12th", "sale", "bus", "stop"]
PLAIN = {
    "texture_strength": 0.0,
    "regions": 0,
    "clutter_shapes": 0,
    "clutter_strokes": 0,
    "patterns": 0,
    "sign_prob": 0.0,
    "occlusion_prob": 0.0,
    "gradient_prob": 0.0,
    "shadow_prob": 0.0,
    "blur_prob": 0.0,
    "low_resolution_prob": 0.0,
    "noise": 0.0,
    "jpeg_prob": 0.0,
    "dontcare_prob": 0.0,
    "low_contrast_prob": 0.0,
    "min_contrast": 120,
}


@pytest.fixture(scope="module")
def sampler():
    from tfls.recognition.charset import Charset
    from tfls.recognition.corpus import WordSampler

    return WordSampler(Charset(), WORDS, random_fraction=0.0, upper_fraction=0.3, title_fraction=0.3)


@pytest.fixture(scope="module")
def fonts():
    from tfls.recognition import fonts as fonts_lib

    return fonts_lib.split_fonts()[0]


def _signed_area(quad):
    x, y = quad[:, 0], quad[:, 1]
    return 0.5 * np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y)


def test_scene_sizes_words_and_transcriptions(sampler, fonts):
    mix = {"canvas_sizes": "320x240,400x225", "portrait_prob": 0.5, "max_words": 12, "min_height": 10, "max_height": 40}
    renderer = scenes.SceneRenderer(fonts, sampler, mix)
    shapes = set()
    for i in range(6):
        scene = scenes.render_indexed(renderer, 3, i)
        h, w = scene.image.shape[:2]
        shapes.add((w, h))
        assert scene.image.dtype == np.uint8 and scene.image.shape[2] == 3
        assert (w, h) in {(320, 240), (240, 320), (400, 225), (225, 400)}
        assert len(scene.quads) == len(scene.texts) <= 12 and len(scene.texts) >= 1
        assert scene.dontcare.shape == (len(scene.texts),)
        for quad, text in zip(scene.quads, scene.texts):
            assert np.all((quad >= -0.5) & (quad <= [w + 0.5, h + 0.5]))
            assert _signed_area(quad) > 0  # clockwise on screen, the ICDAR order
            assert text == "###" or text.lower() in WORDS
    assert len(shapes) > 1
    again = scenes.render_indexed(renderer, 3, 5)
    np.testing.assert_array_equal(again.image, scene.image)
    np.testing.assert_array_equal(again.quads, scene.quads)
    assert again.texts == scene.texts


def test_scene_ink_lies_in_the_quads_and_every_quad_holds_ink(sampler, fonts):
    mix = dict(PLAIN, canvas_sizes="360x270", max_words=8, min_height=14, max_height=40, uniform_angle_prob=1.0)
    mix.update(perspective_prob=1.0, perspective=0.3)
    renderer = scenes.SceneRenderer(fonts, sampler, mix)
    for i in range(3):
        scene = scenes.render_indexed(renderer, 11, i)
        grey = scene.image.astype(float).mean(-1)
        # the background is a smooth gradient: text is where the image departs from a local average
        smooth = grey.copy()
        for axis in (0, 1):
            for _ in range(3):
                smooth = (np.roll(smooth, 4, axis) + smooth + np.roll(smooth, -4, axis)) / 3
        ink = np.abs(grey - smooth) > 40
        ink[:8], ink[-8:], ink[:, :8], ink[:, -8:] = False, False, False, False  # np.roll wraps at the border
        ys, xs = np.nonzero(ink)
        polygons = [shapely.Polygon(q) for q in scene.quads]
        near = shapely.union_all([p.buffer(5.0) for p in polygons])
        assert shapely.contains_xy(near, xs + 0.5, ys + 0.5).mean() > 0.97
        yy, xx = np.mgrid[0 : grey.shape[0], 0 : grey.shape[1]] + 0.5
        for polygon in polygons:
            assert polygon.is_valid and ink[shapely.contains_xy(polygon, xx, yy)].mean() > 0.05


def test_angles_reach_90_degrees_and_dontcare_lines_are_marked(sampler, fonts):
    mix = dict(PLAIN, canvas_sizes="400x400", uniform_angle_prob=1.0, max_words=16, dontcare_prob=0.5)
    renderer = scenes.SceneRenderer(fonts, sampler, mix)
    angles, texts = [], []
    for i in range(6):
        scene = scenes.render_indexed(renderer, 4, i)
        top = scene.quads[:, 1] - scene.quads[:, 0]
        angles.extend(np.degrees(np.arctan2(top[:, 1], top[:, 0])))
        texts.extend(scene.texts)
    assert np.max(np.abs(angles)) > 60
    assert "###" in texts and any(t != "###" for t in texts)


def test_scene_mix_is_checked():
    with pytest.raises(ValueError, match="unknown scene keys"):
        scenes.validate_mix({"colour_cast": 1})
    with pytest.raises(ValueError, match="max_angle_deg"):
        scenes.validate_mix({"max_angle_deg": 120.0})
    with pytest.raises(ValueError, match="WxH"):
        scenes.validate_mix({"canvas_sizes": "640by480"})
    with pytest.raises(ValueError, match="backgrounds"):
        scenes.validate_mix({"backgrounds": "noise,marble"})
    with pytest.raises(ValueError, match="min_height"):
        scenes.validate_mix({"min_height": 50, "max_height": 20})
    assert scenes.parse_canvas_sizes(" 640x480, 1280x720 ") == ((640, 480), (1280, 720))


@pytest.mark.parametrize("kind", scenes.SCENE_BACKGROUNDS)
def test_every_background_kind_draws_a_bounded_field(kind):
    field = scenes.texture(kind, np.random.default_rng(0), 60, 90)
    assert field.shape == (60, 90) and np.isfinite(field).all() and np.abs(field).max() <= 1.5
    assert field.std() > 0.01
