"""zipsafe: hostile archives are refused, honest ones unpack; downloads are checked."""

from __future__ import annotations

import asyncio
import errno
import os
import re
import stat
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from daemon.errors import (
    AnswerTooSlow,
    HostError,
    MalformedResponse,
    RemoteRejected,
    TransientError,
    UnsafeArchive,
)
from daemon.services import http, zipsafe
from mockserver.core import oss_expired_xml


def _zip(path: Path, members: dict[str, bytes], *, compression: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def test_honest_archive_unpacks_with_folders(tmp_path: Path) -> None:
    z = _zip(
        tmp_path / "ok.zip",
        {"full.md": b"# hi", "images/a.jpg": b"\xff\xd8\xff", "x_content_list.json": b"[]"},
    )
    written = zipsafe.extract(z, tmp_path / "raw")
    assert sorted(p.relative_to(tmp_path / "raw").as_posix() for p in written) == [
        "full.md",
        "images/a.jpg",
        "x_content_list.json",
    ]
    assert (tmp_path / "raw" / "images" / "a.jpg").read_bytes() == b"\xff\xd8\xff"


def test_replaces_an_earlier_extraction_whole(tmp_path: Path) -> None:
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "stale.txt").write_text("old")
    zipsafe.extract(_zip(tmp_path / "ok.zip", {"full.md": b"new"}), tmp_path / "raw")
    assert sorted(p.name for p in (tmp_path / "raw").iterdir()) == ["full.md"]


@pytest.mark.parametrize(
    "name",
    [
        "../evil.txt",
        "a/../../evil.txt",
        "/etc/evil",
        "C:/evil.txt",
        "c:evil.txt",
        "..\\evil.txt",
        "a\\..\\..\\evil.txt",
        "./a.txt",
        "a//b.txt",
    ],
)
def test_zip_slip_names_are_refused(tmp_path: Path, name: str) -> None:
    z = _zip(tmp_path / "bad.zip", {"full.md": b"ok", name: b"pwned"})
    with pytest.raises(UnsafeArchive):
        zipsafe.extract(z, tmp_path / "out" / "raw")
    assert not (tmp_path / "evil.txt").exists()
    assert not (tmp_path / "out" / "raw").exists()  # nothing half-written is left
    assert list((tmp_path / "out").iterdir()) == []


def test_symlink_member_is_refused(tmp_path: Path) -> None:
    z = tmp_path / "link.zip"
    with zipfile.ZipFile(z, "w") as zf:
        info = zipfile.ZipInfo("images/passwd")
        info.create_system = 3
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(UnsafeArchive, match="link or special"):
        zipsafe.extract(z, tmp_path / "raw")
    assert not (tmp_path / "raw").exists()


def test_zip_bomb_by_ratio_is_refused(tmp_path: Path) -> None:
    z = _zip(tmp_path / "bomb.zip", {"zeros.bin": b"\0" * (8 * 1024 * 1024)})
    with pytest.raises(UnsafeArchive, match="zip bomb"):
        zipsafe.extract(z, tmp_path / "raw", max_ratio=50)
    assert not (tmp_path / "raw").exists()


def test_total_size_is_counted_from_bytes_written_not_headers(tmp_path: Path) -> None:
    z = _zip(
        tmp_path / "big.zip",
        {f"f{i}.bin": bytes(range(256)) * 4096 for i in range(4)},
        compression=zipfile.ZIP_STORED,
    )
    with pytest.raises(UnsafeArchive, match="more than"):
        zipsafe.extract(z, tmp_path / "raw", max_total_bytes=3 * 1024 * 1024)


def test_lying_header_size_does_not_pass(tmp_path: Path) -> None:
    """A central directory that claims 10 bytes for a 1 MiB member: zipfile stops at the
    claimed size and the CRC no longer matches → a damaged archive, not a silent pass."""
    z = _zip(tmp_path / "liar.zip", {"a.bin": b"A" * (1 << 20)}, compression=zipfile.ZIP_STORED)
    data = bytearray(z.read_bytes())
    cd = data.rfind(b"PK\x01\x02")
    data[cd + 24 : cd + 28] = (10).to_bytes(4, "little")  # uncompressed size in the CD
    z.write_bytes(bytes(data))
    with pytest.raises((MalformedResponse, UnsafeArchive)):
        zipsafe.extract(z, tmp_path / "raw")


def test_too_many_files_is_refused(tmp_path: Path) -> None:
    z = _zip(tmp_path / "many.zip", {f"f{i}.txt": b"x" for i in range(30)})
    with pytest.raises(UnsafeArchive, match="30 entries"):
        zipsafe.extract(z, tmp_path / "raw", max_files=20)


def test_truncated_zip_is_malformed_and_retryable(tmp_path: Path) -> None:
    z = _zip(tmp_path / "ok.zip", {"full.md": b"# hi" * 1000})
    z.write_bytes(z.read_bytes()[:100])
    with pytest.raises(MalformedResponse) as info:
        zipsafe.extract(z, tmp_path / "raw")
    assert info.value.retryable
    assert not UnsafeArchive.retryable


def _download(handler, tmp_path: Path, max_bytes: int = 1 << 20) -> int:  # type: ignore[no-untyped-def]
    async def go() -> int:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            return await zipsafe.download(
                client,
                "https://cdn.example/r.zip",
                tmp_path / "r.zip",
                max_bytes=max_bytes,
                service="mineru",
            )

    return asyncio.run(go())


def test_download_writes_the_body(tmp_path: Path) -> None:
    assert _download(lambda r: httpx.Response(200, content=b"PK" * 50), tmp_path) == 100
    assert (tmp_path / "r.zip").read_bytes() == b"PK" * 50
    assert not (tmp_path / "r.zip.part").exists()


def test_download_short_of_content_length_is_malformed(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, headers={"Content-Length": "1000"}, stream=httpx.ByteStream(b"x" * 10)
        )

    with pytest.raises(MalformedResponse, match="truncated"):
        _download(handler, tmp_path)
    assert not (tmp_path / "r.zip").exists()


def test_download_expired_link_is_transient_access_denied(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            403, content=oss_expired_xml(), headers={"Content-Type": "application/xml"}
        )

    with pytest.raises(TransientError) as info:
        _download(handler, tmp_path)
    assert info.value.remote_code == "AccessDenied" and info.value.retryable


def test_download_over_max_bytes_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UnsafeArchive):
        _download(lambda r: httpx.Response(200, content=b"x" * 5000), tmp_path, max_bytes=1000)


def test_download_reads_no_more_of_an_error_page_than_it_shows(tmp_path: Path) -> None:
    taken = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal taken
        for _ in range(1000):  # 64 MB of "error page"
            taken += 65536
            yield b"<Error>" + b" " * 65529

    with pytest.raises(RemoteRejected):
        _download(lambda r: httpx.Response(400, stream=AsyncStream(body())), tmp_path)
    assert taken <= 2 * 65536


class AsyncStream(httpx.AsyncByteStream):
    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        self.chunks = chunks

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self.chunks:
            yield chunk


# --- a trickling link, a full disk -----------------------------------------------------------


def test_download_that_trickles_is_cut_at_its_deadline(tmp_path: Path) -> None:
    """A link that sends a byte every 0.1 s (inside any per-read timeout) would hold the
    download slot for as long as it likes: the whole download has a deadline."""

    async def go() -> AnswerTooSlow:
        hung_up = asyncio.Event()

        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n")
            try:
                while not reader.at_eof():
                    writer.write(b"P")
                    await writer.drain()
                    await asyncio.sleep(0.1)
            except ConnectionError:
                pass
            hung_up.set()
            writer.close()

        srv = await asyncio.start_server(handler, "127.0.0.1", 0)
        port = srv.sockets[0].getsockname()[1]
        client = http.make_client(
            f"http://127.0.0.1:{port}", timeout=0.5, transport=None, max_connections=1
        )
        try:
            with pytest.raises(AnswerTooSlow) as info:
                await asyncio.wait_for(
                    zipsafe.download(
                        client, "/r.zip", tmp_path / "r.zip", max_bytes=1 << 30, service="mineru"
                    ),
                    10,
                )
            await asyncio.wait_for(hung_up.wait(), 5)  # the connection was closed
        finally:
            await client.aclose()
            srv.close()
        return info.value

    error = asyncio.run(go())
    assert re.search(r"result download \(\d+ bytes so far\) did not complete within", str(error))
    assert list(tmp_path.iterdir()) == []  # no .part left


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")
def test_download_onto_a_full_disk_is_a_host_error_naming_the_folder(tmp_path: Path) -> None:
    """A real ENOSPC from the kernel: the ``.part`` file is a link to /dev/full."""
    (tmp_path / "r.zip.part").symlink_to("/dev/full")
    with pytest.raises(HostError, match=re.escape(f"in {tmp_path}: the disk is full")) as info:
        _download(lambda r: httpx.Response(200, content=b"PK" * 50_000), tmp_path)
    assert info.value.retryable
    assert isinstance(info.value.__cause__, OSError)
    assert info.value.__cause__.errno == errno.ENOSPC
    assert list(tmp_path.iterdir()) == []  # no .part, no zip


def _failing_writes(monkeypatch: pytest.MonkeyPatch, code: int, after: int = 0) -> None:
    """Files opened for writing fail with *code* once *after* bytes went in: what a full,
    over-quota, read-only or failing disk does."""
    real_open = Path.open

    class Failing:
        def __init__(self, fh: Any) -> None:
            self.fh = fh
            self.count = 0

        def write(self, data: bytes) -> int:
            self.count += len(data)
            if self.count > after:
                raise OSError(code, os.strerror(code))
            return int(self.fh.write(data))

        def __enter__(self) -> Failing:
            return self

        def __exit__(self, *exc: object) -> None:
            self.fh.close()

    def opening(self: Path, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        fh = real_open(self, mode, *args, **kwargs)
        return Failing(fh) if "x" in mode or "w" in mode else fh

    monkeypatch.setattr(Path, "open", opening)


@pytest.mark.parametrize(
    "code, meaning",
    [
        (errno.ENOSPC, "the disk is full"),
        (errno.EDQUOT, "quota"),
        (errno.EROFS, "read-only"),
        (errno.EIO, "input/output error"),
    ],
)
def test_extract_onto_a_failing_disk_is_a_host_error_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int, meaning: str
) -> None:
    z = _zip(tmp_path / "ok.zip", {"full.md": b"# hi" * 1000, "images/a.jpg": b"\xff" * 5000})
    work = tmp_path / "work"
    (work / "raw").mkdir(parents=True)
    (work / "raw" / "earlier.md").write_text("an earlier extraction")
    _failing_writes(monkeypatch, code, after=3000)
    with pytest.raises(
        HostError, match=re.escape(f"cannot unpack the result in {work}: ") + f".*{meaning}"
    ) as info:
        zipsafe.extract(z, work / "raw")
    assert info.value.retryable and info.value.__cause__ is not None
    assert sorted(p.name for p in work.iterdir()) == ["raw"]  # no temporary folder
    assert (work / "raw" / "earlier.md").read_text() == "an earlier extraction"


def test_a_member_name_the_disk_cannot_hold_is_the_archives_fault(tmp_path: Path) -> None:
    z = _zip(tmp_path / "long.zip", {"full.md": b"ok", "a" * 300 + ".png": b"x"})
    with pytest.raises(UnsafeArchive, match="cannot store"):
        zipsafe.extract(z, tmp_path / "out" / "raw")
    assert list((tmp_path / "out").iterdir()) == []


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="reads fd paths from /proc")
def test_extract_is_on_disk_before_it_returns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every file and folder fsynced, then the rename into place, then the parent: a power
    cut after the job is recorded ``received`` finds the whole result."""
    events: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src: Any, dst: Any) -> None:
        events.append(("replace", f"{src} -> {dst}"))
        real_replace(src, dst)

    members = {
        "full.md": b"# hi",
        "images/a.jpg": b"\xff",
        "images/sub/b.png": b"\x89",
        "x_content_list.json": b"[]",
    }
    z = _zip(tmp_path / "ok.zip", members)
    work = tmp_path / "work"
    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    zipsafe.extract(z, work / "raw")
    renames = [i for i, e in enumerate(events) if e[0] == "replace"]
    assert len(renames) == 1
    (rename,) = renames
    tmp = Path(events[rename][1].split(" -> ")[0])
    before = {Path(p).relative_to(tmp).as_posix() for op, p in events[:rename] if op == "fsync"}
    assert before == {*members, "images", "images/sub", "."}
    assert events[rename + 1 :] == [("fsync", str(work))]


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="reads fd paths from /proc")
def test_a_durable_download_is_on_disk_before_it_returns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A result that is itself the answer (a Markdown link without a zip) is fsynced,
    renamed into place, and its folder fsynced; a zip to unpack is not (it is deleted)."""
    events: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src: Any, dst: Any) -> None:
        events.append(("replace", str(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"# full.md")

    async def go(name: str, durable: bool) -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
            await zipsafe.download(
                client, "https://cdn.example/x", tmp_path / name, max_bytes=100, durable=durable
            )

    asyncio.run(go("full.md", True))
    md = tmp_path / "full.md"
    assert events == [
        ("fsync", str(tmp_path / "full.md.part")),
        ("replace", str(md)),
        ("fsync", str(tmp_path)),
    ]
    events.clear()
    asyncio.run(go("result.zip", False))
    assert events == [("replace", str(tmp_path / "result.zip"))]
