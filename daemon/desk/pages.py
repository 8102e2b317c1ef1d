"""An original's page as a picture for the desk, drawn in a helper process
(daemon/desk/render.py) with a memory ceiling and a deadline, and kept in a small cache
under the state folder (by content: the same bytes are drawn once).

Only originals inside the archive or the failed folder are ever opened: the path comes
from the store, is resolved (links followed) and must land inside one of them.  A
document still in flight (its original in the inbox) has no picture yet.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from ..store import Job

log = logging.getLogger("docinbox")

#: Kinds a page can be drawn of (PDF through PDFium, the rest through Pillow).
DRAWABLE = frozenset({"pdf", "png", "jpg", "tiff", "gif", "bmp", "webp"})
MAX_PIXELS = 1600
TIMEOUT = 30.0
MEMORY = 1 << 30
MAX_PNG = 32 * 1024 * 1024
CACHE_FILES = 400


class Pages:
    def __init__(
        self,
        cache: Path,
        allowed: Sequence[Path],
        *,
        timeout: float = TIMEOUT,
        memory: int = MEMORY,
        concurrency: int = 2,
    ) -> None:
        self.cache = cache
        self.allowed = [p for p in allowed if p is not None]
        self.timeout = timeout
        self.memory = memory
        self._slots = asyncio.Semaphore(concurrency)

    def original(self, job: Job) -> Path | None:
        """The job's original when it lies in the archive or the failed folder."""
        if not job.location or job.kind not in DRAWABLE:
            return None
        try:
            real = Path(job.location).resolve(strict=True)
        except (OSError, RuntimeError):
            return None
        for root in self.allowed:
            with contextlib.suppress(OSError, RuntimeError):
                if real.is_relative_to(root.resolve()) and real.is_file():
                    return real
        return None

    async def png(self, job: Job, page: int) -> bytes | None:
        """Page *page* (0-based) of *job*'s original as PNG; None when there is none."""
        source = self.original(job)
        if source is None or page < 0 or (job.pages is not None and page >= job.pages):
            return None
        cached = self.cache / f"{job.sha256}-{page}.png"
        with contextlib.suppress(OSError):
            return await asyncio.to_thread(cached.read_bytes)
        async with self._slots:
            data = await self._draw(job.kind or "", source, page)
        if data is not None:
            await asyncio.to_thread(self._keep, cached, data)
        return data

    async def _draw(self, kind: str, source: Path, page: int) -> bytes | None:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "daemon.desk.render",
            kind,
            str(source),
            str(page),
            str(MAX_PIXELS),
            str(self.memory),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(), self.timeout)
        except (TimeoutError, asyncio.TimeoutError):
            proc.kill()
            await proc.wait()
            log.info("the page %d of %s took too long to draw", page + 1, source.name)
            return None
        if proc.returncode != 0 or not out.startswith(b"\x89PNG") or len(out) > MAX_PNG:
            log.info("cannot draw page %d of %s: %s", page + 1, source.name, err[:200])
            return None
        return out

    def _keep(self, path: Path, data: bytes) -> None:
        """(Worker thread) cached for next time; the oldest go past CACHE_FILES."""
        with contextlib.suppress(OSError):
            self.cache.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, path)
            files = sorted(self.cache.glob("*.png"), key=lambda p: p.stat().st_mtime)
            for old in files[: max(0, len(files) - CACHE_FILES)]:
                old.unlink(missing_ok=True)
