"""Icons: one distinct *shape* per state (not colour alone), plus a badge."""

from __future__ import annotations

import itertools

from PIL import Image, ImageChops

from daemon.tray.icons import SIZE, contact_sheet, render
from daemon.tray.state import Kind


def glyph_mask(img: Image.Image) -> Image.Image:
    """Near-white pixels: the glyph, independent of the tile's colour."""
    rgb = img.convert("RGB")
    return Image.eval(rgb.convert("L"), lambda v: 255 if v > 230 else 0).point(
        lambda v: v, mode="1"
    )


def differing_pixels(a: Image.Image, b: Image.Image) -> int:
    diff = ImageChops.difference(a.convert("L"), b.convert("L"))
    return diff.point(lambda v: 255 if v else 0).histogram()[255]


def test_every_kind_renders_a_square_rgba_icon() -> None:
    for kind in Kind:
        img = render(kind)
        assert img.size == (SIZE, SIZE)
        assert img.mode == "RGBA"
        assert img.getpixel((0, 0))[3] == 0  # rounded corner is transparent
        assert img.getpixel((SIZE // 2, 6))[3] >= 250  # the tile is opaque


def test_glyph_shapes_differ_pairwise_even_in_black_and_white() -> None:
    masks = {kind: glyph_mask(render(kind)) for kind in Kind}
    for a, b in itertools.combinations(Kind, 2):
        assert differing_pixels(masks[a], masks[b]) > 100, (a, b)


def test_badge_is_drawn_in_the_lower_right_corner() -> None:
    plain, badged = render(Kind.WORKING), render(Kind.WORKING, "3")
    diff = ImageChops.difference(plain, badged).getbbox()
    assert diff is not None
    left, top, _right, _bottom = diff
    assert left >= SIZE // 2 and top >= SIZE // 2
    assert differing_pixels(render(Kind.WORKING, "3"), render(Kind.WORKING, "4")) > 10
    assert differing_pixels(render(Kind.WORKING, "99+"), render(Kind.WORKING, "3")) > 10


def test_small_sizes_and_contact_sheet() -> None:
    assert render(Kind.ERROR, "!", 22).size == (22, 22)
    sheet = contact_sheet()
    assert sheet.width > 6 * SIZE
