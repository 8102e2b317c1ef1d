"""Result archives from a service, treated as hostile input.

A MinerU-style service answers with a link to a zip.  The zip is downloaded streamed
(:func:`download`) and unpacked (:func:`extract`) into the job's work folder, so a
malicious or broken service must not be able to write outside that folder (zip-slip,
absolute paths, drive letters, backslashes), plant links or device files, or fill the
disk (zip bombs: sizes are counted while writing, never taken from the headers).

Errors: a truncated or corrupt archive/download is :class:`MalformedResponse`
(retryable: a fresh download may be whole); an archive that is unsafe by construction is
:class:`UnsafeArchive` (not retryable: the service would send the same thing again).
An expired result link (403 ``AccessDenied`` from OSS/CDN) is a :class:`TransientError`
with ``remote_code="AccessDenied"``: the next poll asks the API for a fresh link.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import shutil
import stat
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from ..errors import (
    MalformedResponse,
    NetworkError,
    RemoteRejected,
    ServerError,
    TransientError,
    UnsafeArchive,
)
from ..outbox.disk import host_error
from . import http
from .libs import httpx

#: Defaults sized for MinerU: a 200 MB original is stored in the zip next to its images
#: and JSON, so a few GB of output is the most an honest archive needs.
MAX_TOTAL_BYTES = 4 * 1024**3
MAX_FILES = 20_000
MAX_RATIO = 200.0
#: Entries smaller than this are never judged by their ratio (tiny files compress oddly).
RATIO_SLACK = 1024 * 1024
CHUNK = 1 << 16

_DRIVE = re.compile(r"^[A-Za-z]:")


def _safe_parts(name: str) -> tuple[str, ...]:
    """The path components of a member name, or UnsafeArchive when it could escape."""
    if not name or "\x00" in name or "\\" in name or ":" in name or _DRIVE.match(name):
        raise UnsafeArchive(f"unsafe member name in the result archive: {name!r}")
    if name.startswith("/"):
        raise UnsafeArchive(f"absolute path in the result archive: {name!r}")
    parts = PurePosixPath(name).parts
    if any(p in ("..", ".") for p in name.rstrip("/").split("/")) or not parts:
        raise UnsafeArchive(f"path escapes the result folder: {name!r}")
    if any(p == "" for p in name.rstrip("/").split("/")):
        raise UnsafeArchive(f"empty path component in the result archive: {name!r}")
    return parts


def _check_type(info: zipfile.ZipInfo) -> None:
    """Only regular files and folders: a symlink or device entry is refused."""
    mode = (info.external_attr >> 16) & 0xFFFF
    kind = stat.S_IFMT(mode)
    if kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
        raise UnsafeArchive(
            f"the result archive holds a link or special file: {info.filename!r} (mode {mode:o})"
        )
    if info.flag_bits & 0x1:
        raise UnsafeArchive(f"encrypted member in the result archive: {info.filename!r}")


def extract(
    zip_path: Path,
    dest: Path,
    *,
    max_total_bytes: int = MAX_TOTAL_BYTES,
    max_files: int = MAX_FILES,
    max_ratio: float = MAX_RATIO,
) -> list[Path]:
    """Unpack *zip_path* into *dest* (replaced whole, via a temporary sibling folder).

    Returns the files written, under *dest*.  Nothing from the archive's headers is
    trusted: the bytes written are counted against *max_total_bytes* and each entry's
    output against ``max_ratio`` × its compressed size.

    On disk for good before it returns (the job is recorded ``received`` next, and a
    power cut after that must find the whole result): every file and folder is fsynced,
    then the folder renamed into place, then its parent fsynced.  A disk that says no
    (full, quota, read-only, I/O error) is a :class:`HostError` naming the folder, with
    nothing of the attempt left behind.
    """
    dest = Path(dest)
    folder = dest.parent
    # Not mkdtemp: its 0700 would become the result folder's mode once renamed into
    # place; mkdir honours the user's umask like every other folder docinbox writes.
    tmp = folder / f".{dest.name}.{secrets.token_hex(6)}"
    old = folder / f".{dest.name}.old.{secrets.token_hex(6)}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp.mkdir()
        written, folders = _extract_into(
            zip_path, tmp, max_total_bytes=max_total_bytes, max_files=max_files, max_ratio=max_ratio
        )
        for path in written:
            _fsync(path)
        for path in sorted(folders, key=lambda p: len(p.parts), reverse=True):
            _fsync_dir(path)
        _swap_in(tmp, dest, old)
        _fsync_dir(folder)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError):
            raise host_error(exc, folder, "unpack the result") from exc
        raise
    shutil.rmtree(old, ignore_errors=True)
    return [dest / p.relative_to(tmp) for p in written]


def _swap_in(tmp: Path, dest: Path, old: Path) -> None:
    """*tmp* renamed to *dest*, an earlier *dest* moved to *old* first: should the rename
    fail, the earlier result is put back rather than lost."""
    replaced = dest.exists()
    if replaced:
        os.replace(dest, old)  # aside, so a failed rename below can put it back
    try:
        os.replace(tmp, dest)
    except OSError:
        if replaced:
            with contextlib.suppress(OSError):
                os.replace(old, dest)
        raise


def _fsync(path: Path) -> None:
    """*path*'s data on disk.  Files are fsynced once all are written, not one by one:
    the disk writes them back meanwhile (30 files, 2 MB: ~6 ms instead of ~9 ms)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    """*path*'s entries on disk; Windows cannot open a folder to fsync it (NTFS journals
    its metadata itself)."""
    if os.name != "nt":
        _fsync(path)


#: Errors creating a member that are the archive's doing, not the disk's: a name this
#: file system cannot hold.  Retrying would meet the same name.
_BAD_NAME = frozenset({errno.ENAMETOOLONG, errno.EILSEQ, errno.EINVAL})


def _extract_into(
    zip_path: Path, root: Path, *, max_total_bytes: int, max_files: int, max_ratio: float
) -> tuple[list[Path], set[Path]]:
    """(the files written, every folder that holds new entries — *root* included)."""
    try:
        archive = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise MalformedResponse(f"the result archive is not a readable zip: {exc}") from exc
    unpacking = _Unpacking(archive, root, max_total_bytes=max_total_bytes, max_ratio=max_ratio)
    with archive:
        infos = archive.infolist()
        if len(infos) > max_files:
            raise UnsafeArchive(
                f"the result archive holds {len(infos)} entries (at most {max_files} accepted)"
            )
        for info in infos:
            unpacking.member(info)
    return unpacking.written, unpacking.folders


class _Unpacking:
    """One archive's members into *root*, every byte counted against the bomb limits."""

    def __init__(
        self, archive: zipfile.ZipFile, root: Path, *, max_total_bytes: int, max_ratio: float
    ) -> None:
        self.archive = archive
        self.root = root
        self.root_resolved = root.resolve()
        self.max_total_bytes = max_total_bytes
        self.max_ratio = max_ratio
        self.total = 0
        self.written: list[Path] = []
        self.folders: set[Path] = {root}
        self.seen: set[tuple[str, ...]] = set()

    def member(self, info: zipfile.ZipInfo) -> None:
        parts = _safe_parts(info.filename)
        _check_type(info)
        key = tuple(p.lower() for p in parts)
        if key in self.seen and not info.is_dir():
            raise UnsafeArchive(f"duplicate member in the result archive: {info.filename!r}")
        self.seen.add(key)
        target = self.root.joinpath(*parts)
        if not target.resolve().is_relative_to(self.root_resolved):  # belt and braces
            raise UnsafeArchive(f"path escapes the result folder: {info.filename!r}")
        self.folders.update(target.parents[: len(parts) - 1])
        if info.is_dir():
            self.folders.add(target)
        try:
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                return
            target.parent.mkdir(parents=True, exist_ok=True)
            self._copy(info, target)
        except (FileExistsError, IsADirectoryError, NotADirectoryError) as exc:
            raise UnsafeArchive(
                f"duplicate member in the result archive: {info.filename!r}"
            ) from exc
        except OSError as exc:
            if exc.errno in _BAD_NAME:
                raise UnsafeArchive(
                    f"the result archive holds a name this disk cannot store: "
                    f"{info.filename!r} ({exc.strerror or exc})"
                ) from exc
            raise  # the disk's: extract() makes it a HostError
        except (
            zipfile.BadZipFile,
            EOFError,
            zipfile.LargeZipFile,
            NotImplementedError,
            ValueError,
        ) as exc:
            raise MalformedResponse(
                f"the result archive is damaged at {info.filename!r}: {exc}"
            ) from exc
        self.written.append(target)

    def _copy(self, info: zipfile.ZipInfo, target: Path) -> None:
        limit = max(RATIO_SLACK, self.max_ratio * max(info.compress_size, 1))
        size = 0
        with self.archive.open(info) as src, target.open("xb") as out:
            while chunk := src.read(CHUNK):
                size += len(chunk)
                self.total += len(chunk)
                if self.total > self.max_total_bytes:
                    raise UnsafeArchive(
                        f"the result archive unpacks to more than {self.max_total_bytes} "
                        "bytes (zip bomb?)"
                    )
                if size > limit:
                    raise UnsafeArchive(
                        f"{info.filename!r} expands more than {self.max_ratio:g}× (zip bomb?)"
                    )
                out.write(chunk)


#: The result download's error body is read this far (an XML error from OSS or a CDN).
ERROR_BODY = 2048


async def download(
    client: httpx.AsyncClient,
    url: str,
    dest: Path,
    *,
    max_bytes: int,
    service: str | None = None,
    durable: bool = False,
) -> int:
    """Stream *url* into *dest* (via ``dest.part``); returns the bytes received.

    A body shorter than its Content-Length, or a connection that drops, is a
    MalformedResponse; an expired link is a TransientError (``remote_code``
    ``AccessDenied``) so that the caller's next poll fetches a fresh link.  The whole
    download has a deadline (:class:`~daemon.services.http.Deadline`: the client's
    timeout, plus a second per ``MIN_RATE`` bytes received), so a link that trickles is
    cut (AnswerTooSlow) and the download slot freed.  A disk that says no while the zip is
    written is a HostError naming the folder; no ``.part`` is left behind.

    *durable*: *dest* is a result itself (not a zip to unpack and delete): it is fsynced
    before the rename into place, and its folder after.
    """
    part = dest.with_name(dest.name + ".part")
    request, deadline = _timed_request(client, url, service)
    progress = _Progress()
    try:
        async with deadline:
            response = await client.send(request, stream=True)
            try:
                await _receive(response, part, max_bytes, service, deadline, progress)
            finally:
                await response.aclose()
        _store(part, dest, durable=durable)
    except TimeoutError as exc:
        if not deadline.expired():
            raise
        raise http.too_slow(
            service, f"the result download ({progress.received} bytes so far)", deadline
        ) from exc
    except (httpx.TransportError, ConnectionError) as exc:
        raise _transport_error(exc, service, progress.received) from exc
    finally:
        with contextlib.suppress(OSError):
            part.unlink()
    return progress.received


def _timed_request(
    client: httpx.AsyncClient, url: str, service: str | None
) -> tuple[httpx.Request, http.Deadline]:
    """The GET for *url* and the deadline that watches it: the link comes from the
    service, so one that is not even a URL is the service's fault (MalformedResponse)."""
    try:
        request = client.build_request("GET", url)
    except httpx.InvalidURL as exc:
        raise MalformedResponse(
            f"{service}: the result link is not a URL: {exc}", service=service
        ) from exc
    deadline = http.deadline_for(request)
    request.extensions = {**request.extensions, "trace": deadline.trace}
    return request, deadline


def _store(part: Path, dest: Path, *, durable: bool) -> None:
    """The finished ``.part`` renamed to *dest*; fsynced around the rename when *dest* is
    a result itself, so a power cut cannot leave it half there."""
    with _disk(dest.parent, "store the result"):
        if durable:
            _fsync(part)
        os.replace(part, dest)
        if durable:
            _fsync_dir(dest.parent)


class _Progress:
    received = 0


async def _receive(
    response: httpx.Response,
    part: Path,
    max_bytes: int,
    service: str | None,
    deadline: http.Deadline,
    progress: _Progress,
) -> None:
    """The answer's body into *part*, capped, counted, checked against Content-Length."""
    status = response.status_code
    if status != 200:
        body = await http.read_capped(response, ERROR_BODY, strict=False)
        raise _link_error(status, body.decode("utf-8", "replace"), service)
    expected = response.headers.get("content-length")
    folder = part.parent
    with _disk(folder, "store the result"):
        folder.mkdir(parents=True, exist_ok=True)
        out = part.open("wb")
    try:
        async for chunk in response.aiter_bytes():
            progress.received += len(chunk)
            if progress.received > max_bytes:
                raise UnsafeArchive(
                    f"{service}: the result is larger than {max_bytes} bytes", service=service
                )
            deadline.moved(len(chunk))
            with _disk(folder, "store the result"):
                out.write(chunk)
    finally:
        with _disk(folder, "store the result"):
            out.close()  # flushes: a full disk may say so only now
    encoded = response.headers.get("content-encoding", "identity") != "identity"
    # Content-Length counts the bytes on the wire, before any decoding.
    wire = response.num_bytes_downloaded if encoded else progress.received
    if expected is not None and expected.isdigit() and int(expected) != wire:
        raise MalformedResponse(
            f"{service}: result download truncated ({wire} of {expected} bytes)",
            service=service,
        )


def _transport_error(exc: Exception, service: str | None, received: int) -> Exception:
    if isinstance(exc, httpx.TimeoutException):
        return NetworkError(f"{service}: result download timed out", service=service)
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError):
        return MalformedResponse(
            f"{service}: result download cut short after {received} "
            f"bytes ({exc or type(exc).__name__})",
            service=service,
        )
    if isinstance(exc, ConnectionError):  # in-process transports surface a dropped one so
        return MalformedResponse(f"{service}: result download cut short ({exc})", service=service)
    return NetworkError(
        f"{service}: result download failed: {exc or type(exc).__name__}", service=service
    )


@contextlib.contextmanager
def _disk(folder: Path, doing: str) -> Iterator[None]:
    """The local disk's errors as a HostError naming *folder* (``raise ... from``)."""
    try:
        yield
    except OSError as exc:
        raise host_error(exc, folder, doing) from exc


def _link_error(status: int, body: str, service: str | None) -> Exception:
    code = xml_tag(body, "Code")
    message = xml_tag(body, "Message") or body[:120]
    if status == 403 and code == "AccessDenied":
        return TransientError(
            f"{service}: the result link expired ({message}); a fresh one "
            "is fetched on the next poll",
            service=service,
            status=403,
            remote_code="AccessDenied",
        )
    if status == 404:
        # NoSuchKey right after "done" can be CDN propagation; asking again is cheap.
        return TransientError(
            f"{service}: the result link answered 404 {code or ''}".strip(),
            service=service,
            status=404,
            remote_code=code or None,
        )
    if status == 429 or status >= 500:
        return ServerError(
            f"{service}: result download got HTTP {status}", service=service, status=status
        )
    return RemoteRejected(
        f"{service}: result download refused: HTTP {status} {message}",
        service=service,
        status=status,
        remote_code=code or None,
    )


def xml_tag(body: str, tag: str) -> str:
    match = re.search(rf"<{tag}>([^<]*)</{tag}>", body)
    return match.group(1).strip() if match else ""
