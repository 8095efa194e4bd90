"""Fonts (discovery, glyph checks, held-out split) and the word renderer's distortions, one key at a time."""

import os

import numpy as np
import pytest
from helpers import load_file

from tfls.recognition import fonts as fonts_lib
from tfls.recognition import renderer as renderer_lib
from tfls.recognition.renderer import CLEAN_DISTORTIONS, DISTORTION_LIMITS, WordRenderer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def str_config():
    module = load_file("str_cfg", "configs", "str.py")
    return module.get_config()


def render(distortions, seed, text="Hello42", fonts=None, channels=1):
    r = WordRenderer(fonts=fonts, distortions=distortions, channels=channels)
    return r.render(text, np.random.default_rng(seed))


# Fonts ------------------------------------------------------------------------------------------------


def test_discovery_keeps_text_fonts_and_reports_the_rest():
    catalogue = fonts_lib.discover_fonts()
    assert len(catalogue.families) >= 15
    for family in ("DejaVu Sans", "DejaVu Serif", "Roboto", "Source Serif Pro", "Fredoka One", "Aileron"):
        assert family in catalogue.families
    reasons = {os.path.basename(p): r for p, r in catalogue.skipped.items()}
    assert reasons["STIXSizOneSymReg.ttf"].startswith("no glyph")  # no Latin letters at all
    assert reasons["cmsy10.ttf"] == "math symbol or fallback font"  # ASCII cmap, symbol glyphs
    assert reasons["Roboto-Thin.ttf"] == "hairline weight"
    assert not any(f.family in fonts_lib.NON_TEXT_FAMILIES for f in catalogue.fonts)
    assert len({(f.family, f.style) for f in catalogue.fonts}) == len(catalogue.fonts)
    assert all(f.licence and f.version and f.package for f in catalogue.fonts)


def test_fallback_font_with_one_glyph_for_everything_is_rejected():
    last_resort = [p for p in fonts_lib.discover_fonts().skipped if os.path.basename(p).startswith("LastResort")]
    if not last_resort:
        pytest.skip("this matplotlib ships no LastResort font")
    assert "distinct glyphs" in fonts_lib.check_font(last_resort[0], fonts_lib.LATIN_CHARACTERS)


def test_every_usable_font_draws_every_character_in_both_cases():
    for font in fonts_lib.discover_fonts().fonts:
        bitmaps = fonts_lib.glyph_bitmaps(font.path, fonts_lib.LATIN_CHARACTERS)
        blank = [c for c, b in zip(fonts_lib.LATIN_CHARACTERS, bitmaps) if b.max() < 32]
        assert not blank, f"{font.path}: no ink for {blank}"


def test_split_is_disjoint_and_holds_out_several_kinds():
    train, ood = fonts_lib.split_fonts()
    train_families, ood_families = {f.family for f in train}, {f.family for f in ood}
    assert train and ood and not train_families & ood_families
    assert ood_families == set(fonts_lib.DEFAULT_OOD_FAMILIES)
    kinds = {fonts_lib.FAMILY_KINDS[f].split()[0] for f in ood_families}
    assert {"serif", "sans", "display"} <= kinds
    assert not {f.path for f in train} & {f.path for f in ood}
    # The config's held-out families are the library's default.
    assert fonts_lib.parse_families(str_config().data.ood_fonts) == fonts_lib.DEFAULT_OOD_FAMILIES
    with pytest.raises(ValueError, match="unknown held-out font families"):
        fonts_lib.split_fonts(ood_families=("No Such Font",))


def test_caps_only_fonts_are_dropped_for_a_case_sensitive_charset():
    train, _ = fonts_lib.split_fonts(case_sensitive=True)
    assert "Amatic SC" not in {f.family for f in train}
    assert "Amatic SC" in {f.family for f in fonts_lib.split_fonts()[0]}


# Rendering --------------------------------------------------------------------------------------------


def test_rendering_is_deterministic_and_every_font_leaves_ink():
    config = str_config()
    for preset in (config.data.distortions, config.data.ood_distortions):
        a, b = render(dict(preset), 5), render(dict(preset), 5)
        assert np.array_equal(a, b) and a.shape == (32, 100, 1) and a.dtype == np.uint8
        assert not np.array_equal(a, render(dict(preset), 6))
    train, ood = fonts_lib.split_fonts()
    for font in train + ood:
        image = render({}, 0, fonts=[font])
        assert image.std() > 10, f"{font.path} renders a blank word"


# The probability that switches each magnitude on, and a moderate magnitude for each probability.
PARTNERS = {
    "curve": ("curve_prob", 1.0),
    "tracking": ("tracking_prob", 1.0),
    "crop_cut": ("crop", 1.0),
    "low_contrast": ("low_contrast_prob", 1.0),
    "texture_strength": ("textured_background", 1.0),
    "backgrounds": ("textured_background", 1.0),
    "gradient": ("gradient_prob", 1.0),
    "shadow": ("shadow_prob", 1.0),
    "blur_radius": ("blur", 1.0),
    "motion_blur": ("motion_blur_prob", 1.0),
    "jpeg_quality": ("jpeg", 1.0),
    "low_resolution": ("low_resolution_prob", 1.0),
}
BASE = dict(
    CLEAN_DISTORTIONS,
    curve=0.3,
    tracking=0.3,
    crop_cut=0.05,
    low_contrast=1,
    texture_strength=0.5,
    gradient=0.5,
    shadow=0.5,
    blur_radius=1.0,
    motion_blur=3.0,
    jpeg_quality=10,
    low_resolution=2.0,
    min_contrast=80,
)


@pytest.mark.parametrize("key", sorted(DISTORTION_LIMITS))
def test_each_distortion_at_its_strongest_changes_the_image(key):
    strongest = DISTORTION_LIMITS[key][2]
    if key == "colour":
        base, changed = dict(BASE, colour=False), dict(BASE, colour=True)
    else:
        base = dict(BASE)
        changed = dict(BASE, **{key: strongest})
        if key in PARTNERS:
            partner, value = PARTNERS[key]
            base[partner] = changed[partner] = value
            if key == "low_contrast":
                base["low_contrast"] = changed["low_contrast"] = 1
                changed["min_contrast"] = 1
    for channels in (1, 3):
        for seed in range(3):
            before = render(base, seed, channels=channels)
            after = render(changed, seed, channels=channels)
            assert after.shape == (32, 100, channels) and after.dtype == np.uint8
            if not np.array_equal(before, after):
                break
        else:
            pytest.fail(f"{key}={strongest!r} leaves the image unchanged")


@pytest.mark.parametrize("kind", renderer_lib.BACKGROUND_KINDS)
def test_every_background_kind_textures_the_crop(kind):
    flat = render(dict(CLEAN_DISTORTIONS, textured_background=0.0), 3, text="")
    textured = render(dict(CLEAN_DISTORTIONS, textured_background=1.0, backgrounds=kind), 3, text="")
    assert flat.std() < 1 and textured.std() > 1


def test_all_strongest_settings_at_once_still_render():
    strongest = {k: v[2] for k, v in DISTORTION_LIMITS.items()}
    for seed in range(5):
        for text in ("a", "Wonderful", "x" * 25):
            image = render(strongest, seed, text=text, channels=3)
            assert image.shape == (32, 100, 3)


def test_invalid_distortions_are_refused():
    with pytest.raises(ValueError, match="unknown distortion"):
        WordRenderer(distortions={"wobble": 1})
    with pytest.raises(ValueError, match="outside"):
        WordRenderer(distortions={"rotation_deg": 90.0})
    with pytest.raises(ValueError, match="backgrounds"):
        WordRenderer(distortions={"backgrounds": "marble"})
    with pytest.raises(ValueError, match="low_contrast"):
        WordRenderer(distortions={"min_contrast": 40, "low_contrast": 60})


def test_config_presets_are_valid_and_ood_is_harder():
    config = str_config()
    train = renderer_lib.validate_distortions(dict(config.data.distortions))
    ood = renderer_lib.validate_distortions(dict(config.data.ood_distortions))
    assert set(config.data.distortions) == set(DISTORTION_LIMITS) == set(config.data.ood_distortions)
    weaker_when_larger = {"min_contrast", "low_contrast", "jpeg_quality"}
    for key, value in train.items():
        if key in ("colour", "backgrounds"):
            continue
        if key in weaker_when_larger:
            assert ood[key] <= value, key
        else:
            assert ood[key] >= value, key
    assert set(train["backgrounds"].split(",")) < set(ood["backgrounds"].split(","))


def test_hard_training_mix_lies_between_train_and_ood_and_keeps_held_out_backgrounds():
    config = str_config()
    train = renderer_lib.validate_distortions(dict(config.data.distortions))
    ood = renderer_lib.validate_distortions(dict(config.data.ood_distortions))
    hard = renderer_lib.validate_distortions(dict(config.data.hard_distortions))
    for key, value in train.items():
        if key in ("colour", "backgrounds"):
            continue
        low, high = sorted((value, ood[key]))
        assert low <= hard[key] <= high, key
    assert hard["backgrounds"] == train["backgrounds"]  # bricks and scribbles stay held out for test_ood
    assert 0 < config.data.hard_fraction <= 1


def test_between_distortions_by_hand():
    easy = {"rotation_deg": 4.0, "jpeg_quality": 25, "backgrounds": "noise"}
    hard = {"rotation_deg": 8.0, "jpeg_quality": 15, "backgrounds": "noise,bricks"}
    half = renderer_lib.between_distortions(easy, hard, 0.5)
    assert half["rotation_deg"] == 6.0 and half["jpeg_quality"] == 20 and half["backgrounds"] == "noise"
    three_quarters = renderer_lib.between_distortions(easy, hard, 0.75)
    assert three_quarters["rotation_deg"] == 7.0 and three_quarters["jpeg_quality"] == 18  # 17.5 rounds to 18
    assert renderer_lib.between_distortions(easy, hard, 0.0) == renderer_lib.validate_distortions(easy)
    with pytest.raises(ValueError, match="t must be in"):
        renderer_lib.between_distortions(easy, hard, 1.5)


class _Marker:
    """A renderer stub whose image is a constant `value` (to see which renderer drew a word)."""

    def __init__(self, value, height=32, width=100, channels=1):
        self.value, self.height, self.width, self.channels = value, height, width, channels

    def render(self, text, rng):
        return np.full((self.height, self.width, self.channels), self.value, np.uint8)


@pytest.mark.parametrize("fraction", [0.0, 0.3, 1.0])
def test_mixed_renderer_draws_the_hard_share(fraction):
    mixed = renderer_lib.MixedRenderer(_Marker(0), _Marker(255), fraction)
    n = 2000
    hard = sum(mixed.render("x", np.random.default_rng([7, i]))[0, 0, 0] == 255 for i in range(n))
    sigma = (n * fraction * (1 - fraction)) ** 0.5
    assert abs(hard - n * fraction) <= 4 * sigma + 1e-9


def test_mixed_renderer_checks_its_parts():
    with pytest.raises(ValueError, match="same height"):
        renderer_lib.MixedRenderer(_Marker(0), _Marker(1, width=64), 0.5)
    with pytest.raises(ValueError, match="hard_fraction"):
        renderer_lib.MixedRenderer(_Marker(0), _Marker(1), 1.5)
