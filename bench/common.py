"""Shared plumbing for the benchmark suite: the mock and the daemon as real processes,
configs, documents, the state database, /proc readings.

Every process is started in its own session (process group) and registered, so
``cleanup()`` (called from ``finally`` and atexit) can kill whole groups even when a
benchmark fails half-way.  Only loopback traffic.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import selectors
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from mockserver import defaults  # noqa: E402
from mockserver.samples import pdf_bytes, receipt_lines  # noqa: E402

PY = sys.executable
VENV_BIN = Path(PY).parent
DOCINBOX = str(VENV_BIN / "docinbox") if (VENV_BIN / "docinbox").exists() else None
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

T = TypeVar("T")

_procs: list[subprocess.Popen[Any]] = []


# --- processes -------------------------------------------------------------------------------


def spawn(cmd: list[str], **kw: Any) -> subprocess.Popen[Any]:
    env = {**os.environ, "PYTHONPATH": str(REPO), **kw.pop("env", {})}
    proc = subprocess.Popen(cmd, start_new_session=True, env=env, **kw)
    _procs.append(proc)
    return proc


def stop(proc: subprocess.Popen[Any] | None, timeout: float = 15.0) -> float | None:
    """SIGTERM the process group, wait, then SIGKILL it; returns seconds to exit."""
    if proc is None:
        return None
    t0 = time.perf_counter()
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout)
    elapsed = time.perf_counter() - t0
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # whatever is left of the group
    if proc.poll() is None:
        proc.wait(5)
    if proc in _procs:
        _procs.remove(proc)
    return elapsed


def cleanup() -> None:
    for proc in list(_procs):
        with contextlib.suppress(Exception):  # best effort at exit
            stop(proc, timeout=3)


atexit.register(cleanup)


def wait_until(
    cond: Callable[[], T], timeout: float, interval: float = 0.02, what: str = "condition"
) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


# --- the mock --------------------------------------------------------------------------------


class Mock:
    """``docinbox-mock --port 0`` as its own process, throttles off (we measure speed)."""

    def __init__(self) -> None:
        self.proc = spawn(
            [PY, "-m", "mockserver", "--port", "0"], stdout=subprocess.PIPE, text=True
        )
        assert self.proc.stdout is not None
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            if not sel.select(30):
                stop(self.proc)
                raise RuntimeError("the mock did not start within 30 s")
        line = self.proc.stdout.readline()
        if "listening on" not in line:
            stop(self.proc)
            raise RuntimeError(f"unexpected mock output: {line!r}")
        self.url = line.split()[-1].rstrip("/")
        self.admin(
            "POST", "/__admin/config", {"nanonets": {"rate_per_second": 0, "free_quota": None}}
        )

    def admin(self, method: str, path: str, body: Any = None, timeout: float = 30) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.url + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # loopback only
            return json.loads(resp.read() or b"null")

    def requests(self, since: int = 0, path: str | None = None) -> list[dict[str, Any]]:
        q = f"?since={since}"
        if path:
            q += "&path=" + urllib.request.quote(path)
        return self.admin("GET", "/__admin/requests" + q)["requests"]

    def tasks(self) -> list[dict[str, Any]]:
        return self.admin("GET", "/__admin/tasks")["tasks"]

    def fault(self, rule: dict[str, Any]) -> Any:
        return self.admin("POST", "/__admin/faults", rule)

    def close(self) -> None:
        stop(self.proc)

    def __enter__(self) -> Mock:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


#: the shipped routing: short documents to Nanonets, the rest (and anything over 20 MB) to MinerU
ROUTES = """
[[routes]]
service = "nanonets"
max_pages = 3
max_bytes = 20000000
types = ["pdf", "png", "jpg", "tiff"]

[[routes]]
service = "mineru"
"""

LABELFILE = f"/api/v2/OCR/Model/{defaults.NANONETS_MODEL_ID}/LabelFile/"


# --- configs and the daemon ------------------------------------------------------------------


def write_config(
    folder: Path,
    base_url: str | None,
    *,
    concurrency: int | None = 8,
    level: str = "info",
    quiet: float = 0.2,
    settle: float = 2.0,
    routes: str | None = None,
    archive: str = "archive",
) -> Path:
    """The shipped defaults (watcher, log level), against *base_url* or the embedded mock."""
    embedded = base_url is None
    url = base_url or "http://127.0.0.1:9"
    text = f"""
[folders]
inbox = "inbox"
outbox = "outbox"
archive = "{archive}"
failed = "failed"
state = "state/docinbox.db"

[watcher]
quiet_seconds = {quiet}
settle_seconds = {settle}

[mock]
embedded = {str(embedded).lower()}
port = 0

[services.nanonets]
base_url = "{url}"
api_key = "{defaults.NANONETS_API_KEY}"
model_id = "{defaults.NANONETS_MODEL_ID}"
{"" if concurrency is None else f"concurrency = {concurrency}"}

[services.mineru]
base_url = "{url}"
token = "{defaults.MINERU_TOKEN}"

[log]
file = "state/docinbox.log"
level = "{level}"
"""
    text += routes if routes is not None else ROUTES
    folder.mkdir(parents=True, exist_ok=True)
    for sub in ("inbox", "staging"):
        (folder / sub).mkdir(exist_ok=True)
    path = folder / "config.toml"
    path.write_text(text)
    return path


def start_daemon(
    config: Path, *, once: bool = False, stdout: Any = subprocess.DEVNULL
) -> subprocess.Popen[Any]:
    cmd = [DOCINBOX] if DOCINBOX else [PY, "-m", "daemon"]
    cmd += ["run", "-c", str(config), "--no-tray"] + (["--once"] if once else [])
    return spawn(cmd, stdout=stdout, stderr=subprocess.STDOUT)


def log_says(config: Path, text: str) -> bool:
    log = config.parent / "state" / "docinbox.log"
    try:
        return text in log.read_text(errors="replace")
    except FileNotFoundError:
        return False


def failed_codes(config: Path) -> dict[str, int]:
    """error codes of failed/<name>.error.json, counted."""
    out: dict[str, int] = {}
    for p in (config.parent / "failed").glob("*.error.json"):
        try:
            code = json.loads(p.read_text()).get("error", "?")
        except (OSError, ValueError):
            code = "?"
        out[code] = out.get(code, 0) + 1
    return out


# --- the state database (read-only, like `docinbox status`) ----------------------------------


class StateDB:
    def __init__(self, config: Path) -> None:
        self.path = config.parent / "state" / "docinbox.db"
        self._conn: sqlite3.Connection | None = None

    def _c(self) -> sqlite3.Connection | None:
        if self._conn is None:
            if not self.path.exists():
                return None
            try:
                self._conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=5)
            except sqlite3.Error:
                return None
        return self._conn

    def counts(self) -> dict[str, int]:
        conn = self._c()
        if conn is None:
            return {}
        try:
            rows = conn.execute("SELECT state, count(*) FROM jobs GROUP BY state").fetchall()
        except sqlite3.Error:  # the schema not created yet, or busy
            return {}
        return {s: n for s, n in rows}

    def total(self) -> int:
        return sum(self.counts().values())

    def uninspected(self) -> int:
        """Rows whose type is not known yet (queued before inspection)."""
        conn = self._c()
        if conn is None:
            return -1
        try:
            return conn.execute("SELECT count(*) FROM jobs WHERE kind IS NULL").fetchone()[0]
        except sqlite3.Error:
            return -1

    def created_after(self, t: float) -> int:
        conn = self._c()
        assert conn is not None
        return conn.execute("SELECT count(*) FROM jobs WHERE created_at > ?", (t,)).fetchone()[0]

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


# --- documents -------------------------------------------------------------------------------


def receipt(i: int) -> bytes:
    """A unique one-page receipt the demo model reads (total varies with *i*)."""
    return pdf_bytes(
        [receipt_lines(total=f"{i % 1000}.{i % 100:02d}", fecha=f"{1 + i % 28:02d}/12/2025")],
        title=f"recibo {i}",
    )


def make_receipts(folder: Path, n: int, *, aged: bool = True, prefix: str = "r") -> list[Path]:
    """*n* receipts written into *folder*; *aged* back-dates their mtime by a minute
    (files that were already there when the daemon started)."""
    folder.mkdir(parents=True, exist_ok=True)
    old = time.time() - 60
    paths = []
    for i in range(n):
        p = folder / f"{prefix}{i:05d}.pdf"
        p.write_bytes(receipt(i))
        if aged:
            os.utime(p, (old, old))
        paths.append(p)
    return paths


def big_pdf(path: Path, size: int) -> None:
    """A valid one-page receipt PDF of about *size* bytes: the padding is an unreferenced
    stream object (pypdf never loads it), written in 1 MiB chunks."""
    body = receipt(0)
    head, _, _ = body.partition(b"xref\n")
    # the sample's objects, then one padding object, then a fresh xref
    import re

    offsets = [m.start() for m in re.finditer(rb"(?m)^\d+ 0 obj\n", head)]
    n = len(offsets) + 1
    root = re.search(rb"/Root (\d+) 0 R", body)
    assert root is not None
    chunk = b"%" + b"0" * ((1 << 20) - 2) + b"\n"
    pad = max(0, size - len(head) - 400)
    with path.open("wb") as fh:
        fh.write(head)
        pad_offset = fh.tell()
        stream_len = -(-pad // len(chunk)) * len(chunk)
        fh.write(b"%d 0 obj\n<< /Length %d >>\nstream\n" % (n, stream_len))
        for _ in range(-(-pad // len(chunk))):
            fh.write(chunk)
        fh.write(b"\nendstream\nendobj\n")
        xref = fh.tell()
        fh.write(b"xref\n0 %d\n0000000000 65535 f \n" % (n + 1))
        for off in [*offsets, pad_offset]:
            fh.write(b"%010d 00000 n \n" % off)
        fh.write(
            b"trailer\n<< /Size %d /Root %s 0 R >>\nstartxref\n%d\n%%%%EOF\n"
            % (n + 1, root.group(1), xref)
        )


def sha256_file(path: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


# --- /proc -----------------------------------------------------------------------------------


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS / VmHWM in KiB."""
    out = {}
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith(("VmRSS:", "VmHWM:")):
                out[line.split(":")[0]] = int(line.split()[1])
    return out


def cpu_seconds(pid: int) -> float:
    """utime + stime of the whole process (all threads)."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def median(xs: list[float]) -> float:
    import statistics

    return statistics.median(xs)


def pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    if not s:
        return float("nan")
    k = min(len(s) - 1, max(0, round(p / 100 * len(s) + 0.5) - 1))
    return s[k]
