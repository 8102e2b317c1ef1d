"""Fetching a document from the URL a client submitted, as the MinerU family does."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx

from ..documents import docmodel
from ..documents.docmodel import DocError


async def fetch(url: str, target: Path, timeout: float) -> tuple[str, str]:
    """Download *url* to *target* (streamed to disk). Returns (sha256, extension).

    Raises DocError -60008 when it cannot be fetched, -60005 past 200 MB.
    The extension comes from the URL path, else from a Content-Disposition
    filename (seed 002: "请求的文件名及链接中带有正确的后缀名").
    """
    sha = hashlib.sha256()
    size = 0
    try:
        async with (
            httpx.AsyncClient(follow_redirects=True, timeout=timeout, trust_env=False) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code != 200:
                raise DocError(-60008)
            disposition = response.headers.get("content-disposition", "")
            with target.open("wb") as out:
                async for chunk in response.aiter_bytes(1 << 16):
                    size += len(chunk)
                    if size > docmodel.MAX_BYTES:
                        raise DocError(-60005)
                    out.write(chunk)
                    sha.update(chunk)
    except DocError:
        target.unlink(missing_ok=True)
        raise
    except (httpx.HTTPError, OSError, ValueError) as exc:
        target.unlink(missing_ok=True)
        raise DocError(-60008) from exc
    ext = docmodel.extension(urlsplit(url).path)
    if ext not in docmodel.SUPPORTED:
        match = re.search(r'filename\*?=(?:UTF-8\'\')?"?([^";]+)"?', disposition, re.I)
        if match:
            ext = docmodel.extension(unquote(match.group(1)))
    return sha.hexdigest(), ext
