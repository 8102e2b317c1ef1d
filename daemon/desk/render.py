"""The helper process that turns one page of an original into a PNG (``python -m
daemon.desk.render KIND PATH PAGE MAX_PIXELS [MEMORY]`` → the PNG on stdout; exit 2 when the
file cannot be drawn).

An original is untrusted: PDFium (pypdfium2: PDF pages) and Pillow (images) run here,
in a process of their own with a memory ceiling and a deadline set by the parent
(daemon/desk/pages.py), so a file built to crash or exhaust a reader costs one picture,
never the daemon.  Nothing but the path comes in; nothing but PNG bytes go out.
"""

from __future__ import annotations

import io
import sys

#: Pages are drawn at 150 dpi (PDF points are 1/72 inch), within MAX_PIXELS a side.
DPI = 150


def render(kind: str, path: str, page: int, max_pixels: int) -> bytes:
    if kind == "pdf":
        image = _pdf_page(path, page, max_pixels)
    else:
        image = _image_page(path, page, max_pixels)
    out = io.BytesIO()
    image.save(out, "PNG", optimize=False)
    return out.getvalue()


def _pdf_page(path: str, page: int, max_pixels: int):  # type: ignore[no-untyped-def]
    import pypdfium2

    pdf = pypdfium2.PdfDocument(path)
    if not 0 <= page < len(pdf):
        raise IndexError(page)
    width, height = pdf[page].get_size()
    scale = min(DPI / 72, max_pixels / max(width, height, 1))
    return pdf[page].render(scale=scale).to_pil()


def _image_page(path: str, page: int, max_pixels: int):  # type: ignore[no-untyped-def]
    from PIL import Image, ImageSequence

    with Image.open(path) as img:  # Pillow refuses decompression bombs on its own
        frames = ImageSequence.Iterator(img)
        frame = frames[page].copy()
    frame.thumbnail((max_pixels, max_pixels))
    return frame.convert("RGBA" if "A" in frame.getbands() else "RGB")


def _limit_memory(limit: int) -> None:
    """This process's own ceiling, set first thing (no preexec_fn in a threaded parent)."""
    try:
        import resource
    except ImportError:  # Windows: the deadline alone
        return
    try:
        _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard == resource.RLIM_INFINITY or hard > limit:
            resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ValueError, OSError):  # macOS does not enforce RLIMIT_AS
        pass


def main(argv: list[str]) -> int:
    try:
        kind, path, page, max_pixels = argv[0], argv[1], int(argv[2]), int(argv[3])
        if len(argv) > 4:
            _limit_memory(int(argv[4]))
        data = render(kind, path, page, max_pixels)
    except Exception as exc:  # whatever the file did to the reader: no picture
        print(f"cannot draw the page: {type(exc).__name__}: {exc}"[:300], file=sys.stderr)
        return 2
    sys.stdout.buffer.write(data)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
