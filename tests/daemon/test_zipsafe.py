"""zipsafe: hostile archives are refused, honest ones unpack; downloads are checked."""

from __future__ import annotations

import asyncio
import stat
import zipfile
from pathlib import Path

import httpx
import pytest

from daemon.errors import MalformedResponse, TransientError, UnsafeArchive
from daemon.services import zipsafe
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
