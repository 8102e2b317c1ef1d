"""What a submission may ask for, validated as both APIs do (seeds 001 and 002).

The two APIs spell the options differently (``is_ocr`` / ``isOcr``): every check takes the
API's wire *names* so an error message names the field as the client sent it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ..documents import pageranges, resultzip
from .errors import ApiError

DATA_ID = re.compile(r"^[A-Za-z0-9_.\-]{1,128}$")
SEED = re.compile(r"^[A-Za-z0-9_]{1,64}$")
MODEL_VERSIONS = ("pipeline", "vlm")

#: Wire names of the per-file options in snake_case (MinerU v4; docparse's batch endpoints).
SNAKE_NAMES = {
    "is_ocr": "is_ocr",
    "enable_formula": "enable_formula",
    "enable_table": "enable_table",
    "language": "language",
    "data_id": "data_id",
    "page_ranges": "page_ranges",
    "extra_formats": "extra_formats",
    "model_version": "model_version",
    "callback": "callback",
    "seed": "seed",
}
_FLAGS = ("is_ocr", "enable_formula", "enable_table")
_STRINGS = ("language", "data_id", "page_ranges", "model_version", "callback", "seed")


@dataclass
class Options:
    """What a submission asked for (already validated)."""

    is_ocr: bool = False
    enable_formula: bool = True
    enable_table: bool = True
    language: str = "ch"
    data_id: str | None = None
    page_ranges: str | None = None
    extra_formats: tuple[str, ...] = ()
    model_version: str = "pipeline"
    callback: str | None = None
    seed: str | None = None


def parse_options(
    raw: dict[str, Any],
    *,
    names: dict[str, str],
    top: dict[str, Any] | None = None,
    bad_type: int = -500,
    bad_value: int = -10002,
) -> Options:
    """Validate one file's options. *names* maps Options fields to the wire names
    (``is_ocr`` or ``isOcr``); *top* holds request-level fields that apply to every file.

    Wrong JSON types → *bad_type* (-500, "传参错误"); malformed values → *bad_value*.
    """
    merged: dict[str, Any] = {}
    for fld, wire in names.items():
        if top is not None and wire in top:
            merged[fld] = top[wire]
        if wire in raw:
            merged[fld] = raw[wire]
    opts = Options()
    _set_typed(opts, merged, names, bad_type)
    _check_ids(opts, names, bad_value)
    _check_callback(opts, names, bad_value)
    formats = merged.get("extra_formats")
    if formats is not None:
        opts.extra_formats = _extra_formats(formats, names, bad_type, bad_value)
    return opts


def _set_typed(opts: Options, merged: dict[str, Any], names: dict[str, str], bad: int) -> None:
    """Copy the booleans and strings that were given, refusing a wrong JSON type."""
    for fld in _FLAGS:
        if fld in merged and merged[fld] is not None:
            if not isinstance(merged[fld], bool):
                raise ApiError(bad, f"{names[fld]} must be a boolean")
            setattr(opts, fld, merged[fld])
    for fld in _STRINGS:
        value = merged.get(fld)
        if value is None:
            continue
        if not isinstance(value, str):
            raise ApiError(bad, f"{names[fld]} must be a string")
        setattr(opts, fld, value)


def _check_ids(opts: Options, names: dict[str, str], bad: int) -> None:
    """``data_id`` characters, ``page_ranges`` syntax ("" means every page), model version."""
    if opts.data_id is not None and not DATA_ID.match(opts.data_id):
        raise ApiError(
            bad,
            f"{names['data_id']} 只能由英文字母、数字、下划线、短划线、"
            "英文句号组成，不超过128个字符",
        )
    if opts.page_ranges is not None and opts.page_ranges != "":
        try:
            pageranges.validate(opts.page_ranges)
        except ValueError as exc:
            raise ApiError(bad, f"{names['page_ranges']} 格式错误: {exc}") from exc
    elif opts.page_ranges == "":
        opts.page_ranges = None
    if opts.model_version not in MODEL_VERSIONS:
        raise ApiError(bad, f"{names['model_version']} 只支持 pipeline、vlm")


def _check_callback(opts: Options, names: dict[str, str], bad: int) -> None:
    """A callback is an http(s) URL and needs a ``seed`` (seed 002: it signs the push)."""
    if opts.callback is not None:
        scheme = urlsplit(opts.callback).scheme
        if scheme not in ("http", "https"):
            raise ApiError(bad, f"{names['callback']} 必须是 http 或 https 地址")
        if not opts.seed:
            raise ApiError(bad, f"使用 {names['callback']} 时 {names['seed']} 必须提供")
    if opts.seed is not None and not SEED.match(opts.seed):
        raise ApiError(bad, f"{names['seed']} 只能由英文字母、数字、下划线组成，不超过64个字符")


def _extra_formats(
    formats: Any, names: dict[str, str], bad_type: int, bad_value: int
) -> tuple[str, ...]:
    if not isinstance(formats, list) or not all(isinstance(f, str) for f in formats):
        raise ApiError(bad_type, f"{names['extra_formats']} must be a list of strings")
    if any(f not in resultzip.EXTRA_FORMATS for f in formats):
        raise ApiError(bad_value, f"{names['extra_formats']} 仅支持 docx、html、latex")
    return tuple(dict.fromkeys(formats))


def check_url(url: Any, *, bad_type: int = -500, bad_value: int = -10002) -> str:
    """A submission's ``url``: present, a string, an http(s) address with a host."""
    if url is None:
        raise ApiError(bad_value, "url 不能为空")
    if not isinstance(url, str):
        raise ApiError(bad_type, "url must be a string")
    if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc:
        raise ApiError(bad_value, "url 必须是 http 或 https 地址")
    return url
