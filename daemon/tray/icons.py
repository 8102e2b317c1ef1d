"""The tray icon, drawn with Pillow: a coloured tile, one white glyph per state, a badge.

State never depends on colour alone: each :class:`~daemon.tray.state.Kind` has its
own glyph shape (tray, arrow, pause bars, circular arrow, warning triangle, cross),
and counts go into a dark badge in the corner.  Drawn at 4× and scaled down so
edges stay smooth at the 16–32 px a panel actually shows.
"""

from __future__ import annotations

from functools import lru_cache

from PIL import Image, ImageDraw, ImageFont

from daemon.tray.state import Kind

SIZE = 64
_SCALE = 4

#: Tile colours (also distinct in lightness, for colour-blind users and grey panels).
COLOURS: dict[Kind, tuple[int, int, int]] = {
    Kind.IDLE: (84, 110, 122),  # slate
    Kind.WORKING: (25, 118, 210),  # blue
    Kind.PAUSED: (117, 117, 117),  # grey
    Kind.RETRYING: (230, 126, 34),  # orange
    Kind.ATTENTION: (214, 160, 0),  # amber
    Kind.ERROR: (198, 40, 40),  # red
}
WHITE = (255, 255, 255, 255)


def _tile(draw: ImageDraw.ImageDraw, s: int, colour: tuple[int, int, int]) -> None:
    m = s // 32
    r, g, b = colour
    draw.rounded_rectangle(
        (m, m, s - m - 1, s - m - 1),
        radius=s // 5,
        fill=(r, g, b, 255),
        outline=(r // 2, g // 2, b // 2, 255),
        width=max(1, s // 40),
    )


def _glyph(draw: ImageDraw.ImageDraw, kind: Kind, s: int) -> None:
    """Draw the state's glyph in white; coordinates are fractions of the size."""

    def p(x: float, y: float) -> tuple[float, float]:
        return (x * s, y * s)

    w = max(2, round(s * 0.085))  # stroke width
    if kind is Kind.IDLE:  # an inbox tray
        draw.line(
            [p(0.2, 0.38), p(0.2, 0.76), p(0.8, 0.76), p(0.8, 0.38)],
            fill=WHITE,
            width=w,
            joint="curve",
        )
        draw.line(
            [
                p(0.2, 0.56),
                p(0.38, 0.56),
                p(0.44, 0.64),
                p(0.56, 0.64),
                p(0.62, 0.56),
                p(0.8, 0.56),
            ],
            fill=WHITE,
            width=w,
            joint="curve",
        )
    elif kind is Kind.WORKING:  # a down arrow: documents coming in
        draw.rectangle((*p(0.42, 0.16), *p(0.58, 0.5)), fill=WHITE)
        draw.polygon([p(0.24, 0.46), p(0.76, 0.46), p(0.5, 0.8)], fill=WHITE)
    elif kind is Kind.PAUSED:  # two bars
        draw.rectangle((*p(0.28, 0.22), *p(0.43, 0.78)), fill=WHITE)
        draw.rectangle((*p(0.57, 0.22), *p(0.72, 0.78)), fill=WHITE)
    elif kind is Kind.RETRYING:  # a circular arrow
        draw.arc((*p(0.2, 0.2), *p(0.8, 0.8)), start=-60, end=230, fill=WHITE, width=w)
        draw.polygon([p(0.62, 0.12), p(0.84, 0.3), p(0.58, 0.38)], fill=WHITE)
    elif kind is Kind.ATTENTION:  # a warning triangle with "!"
        draw.polygon([p(0.5, 0.14), p(0.86, 0.8), p(0.14, 0.8)], outline=WHITE, width=w)
        draw.rectangle((*p(0.46, 0.36), *p(0.54, 0.6)), fill=WHITE)
        draw.rectangle((*p(0.46, 0.65), *p(0.54, 0.72)), fill=WHITE)
    elif kind is Kind.ERROR:  # a cross
        draw.line([p(0.27, 0.27), p(0.73, 0.73)], fill=WHITE, width=round(w * 1.4))
        draw.line([p(0.73, 0.27), p(0.27, 0.73)], fill=WHITE, width=round(w * 1.4))
    else:  # pragma: no cover - every Kind is drawn above
        raise ValueError(kind)


def _badge(draw: ImageDraw.ImageDraw, text: str, s: int) -> None:
    """A dark disc (pill for long text) in the lower right corner, white-ringed."""
    font = ImageFont.load_default(size=round(s * (0.34 if len(text) <= 2 else 0.26)))
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    tw, th = right - left, bottom - top
    h = round(s * 0.46)
    w = max(h, tw + round(s * 0.16))
    x1, y1 = s - 1, s - 1
    x0, y0 = x1 - w, y1 - h
    draw.rounded_rectangle(
        (x0, y0, x1, y1),
        radius=h // 2,
        fill=(33, 33, 33, 255),
        outline=WHITE,
        width=max(1, s // 32),
    )
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    draw.text((cx - tw / 2 - left, cy - th / 2 - top), text, font=font, fill=WHITE)


@lru_cache(maxsize=64)
def render(kind: Kind, badge: str | None = None, size: int = SIZE) -> Image.Image:
    """The icon for *kind* with an optional *badge*; cached, so treat it as read-only."""
    s = size * _SCALE
    img = Image.new("RGBA", (s, s), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    _tile(draw, s, COLOURS[kind])
    _glyph(draw, kind, s)
    if badge:
        _badge(draw, badge, s)
    return img.resize((size, size), Image.Resampling.LANCZOS)


def contact_sheet(size: int = SIZE) -> Image.Image:
    """Every state side by side (for the docs): idle, working 3, paused, retrying,
    attention 2, error."""
    samples = [
        (Kind.IDLE, None),
        (Kind.WORKING, "3"),
        (Kind.PAUSED, None),
        (Kind.RETRYING, "5"),
        (Kind.ATTENTION, "2"),
        (Kind.ERROR, "!"),
    ]
    pad = size // 4
    sheet = Image.new(
        "RGBA", (len(samples) * (size + pad) + pad, size + 2 * pad), (238, 238, 238, 255)
    )
    for i, (kind, badge) in enumerate(samples):
        icon = render(kind, badge, size)
        sheet.alpha_composite(icon, (pad + i * (size + pad), pad))
    return sheet
