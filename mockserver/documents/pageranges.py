"""MinerU's ``page_ranges`` syntax, shared by the MinerU and docparse mocks.

The seeds define it: a comma-separated list of items, each a page number or a range
``A-B``; a negative number counts from the end, so ``"2--2"`` is page 2 through the
second-to-last page and ``"2,4-6"`` is ``[2, 4, 5, 6]``. Pages are 1-based.

Where the seeds are silent (out-of-range numbers, reversed ranges) the mock clamps to
the document and drops what falls outside it; a selection that ends up empty fails the
task. Syntax is checked at submission (``-10002``), resolution needs the page count
and therefore happens when the document is read.
"""

from __future__ import annotations

import re

_ITEM = re.compile(r"^\s*(-?\d+)\s*(?:-\s*(-?\d+)\s*)?$")


def validate(spec: str) -> None:
    """Raise ValueError when *spec* is not valid ``page_ranges`` syntax."""
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError("page_ranges must be a non-empty string")
    for item in spec.split(","):
        match = _ITEM.match(item)
        if not match:
            raise ValueError(f"bad page_ranges item {item!r}")
        for number in match.groups():
            if number is not None and int(number) == 0:
                raise ValueError("page numbers start at 1 (or -1 from the end)")


def _absolute(number: int, total: int) -> int:
    return number if number > 0 else total + 1 + number


def resolve(spec: str | None, total: int) -> list[int]:
    """The sorted, de-duplicated 1-based pages *spec* selects from a *total*-page file.

    ``None`` or an empty string selects every page.
    """
    if spec is None or not str(spec).strip():
        return list(range(1, total + 1))
    validate(spec)
    pages: set[int] = set()
    for item in spec.split(","):
        match = _ITEM.match(item)
        assert match is not None  # validated above
        start = _absolute(int(match.group(1)), total)
        end = start if match.group(2) is None else _absolute(int(match.group(2)), total)
        lo, hi = max(start, 1), min(end, total)
        pages.update(range(lo, hi + 1))
    return sorted(pages)
