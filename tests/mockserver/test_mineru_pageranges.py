"""page_ranges as seed 002 defines it ("2,4-6" → [2,4,5,6]; "2--2" → 2 .. second-to-last)."""

from __future__ import annotations

import pytest

from mockserver.documents import pageranges


@pytest.mark.parametrize(
    ("spec", "total", "expected"),
    [
        ("2,4-6", 10, [2, 4, 5, 6]),
        ("2--2", 10, [2, 3, 4, 5, 6, 7, 8, 9]),
        ("2--2", 3, [2]),
        ("-1", 7, [7]),
        ("1-600", 3, [1, 2, 3]),
        ("5-3", 9, []),
        ("3,3,1-2", 4, [1, 2, 3]),
        (None, 3, [1, 2, 3]),
        ("", 2, [1, 2]),
        (" 1 - 2 , 4 ", 5, [1, 2, 4]),
    ],
)
def test_resolve(spec: str | None, total: int, expected: list[int]) -> None:
    assert pageranges.resolve(spec, total) == expected


@pytest.mark.parametrize("spec", ["a", "1-", "1--", "0", "2-0", "1,,2", "1-2-3", "1.5"])
def test_invalid_syntax_is_refused(spec: str) -> None:
    with pytest.raises(ValueError):
        pageranges.validate(spec)
