"""docinbox as users run it: the installed console scripts, started as separate processes
exactly as the README says, on a copy of the shipped ``config.toml``.

The copy differs from the shipped file only where two programs on one machine must not
collide (free ports instead of 8765/8766/8767).  Each test gets its own home folder, so
nothing a test does (autostart entries, platform folders) reaches the real user's.
The mock keeps its realistic defaults (rate limits, quotas, processing times).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[2]
SHIPPED_CONFIG = REPO / "config.toml"
T = TypeVar("T")

#: What every user would see in the log and should not: a line at these levels.
PROBLEM = re.compile(r"\b(WARNING|ERROR|CRITICAL)\b|Traceback")
#: Environment a user's shell may carry that would change what a test sees.
_SCRUB = (
    "DOCINBOX_CONFIG",
    "NANONETS_API_KEY",
    "MINERU_API_KEY",
    "DOCPARSE_API_KEY",
    "PARSIO_API_KEY",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
    "DISPLAY",
    "WAYLAND_DISPLAY",
    "DBUS_SESSION_BUS_ADDRESS",
    "XDG_CONFIG_HOME",
    "XDG_STATE_HOME",
    "XDG_DATA_HOME",
    "XDG_RUNTIME_DIR",
    "PYSTRAY_BACKEND",
)


def wait_for(
    condition: Callable[[], T],
    timeout: float = 30.0,
    what: str = "condition",
    interval: float = 0.05,
) -> T:
    """Poll *condition* until it is truthy; fail at the deadline (never a bare sleep)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def receipt(total: str = "45.99") -> bytes:
    """The README's one-page receipt (a PDF with a text layer)."""
    from mockserver.samples import receipt_pdf

    data = receipt_pdf()
    return data if total == "45.99" else data.replace(b"45.99", total.encode())


class Daemon:
    """One ``docinbox run`` process; its stdout and stderr go to a file the test reads."""

    def __init__(self, proc: subprocess.Popen[bytes], output: Path) -> None:
        self.proc = proc
        self.output_path = output

    def output(self) -> str:
        return self.output_path.read_text("utf-8", errors="replace")

    def wait_for_line(self, pattern: str, timeout: float = 30.0) -> re.Match[str]:
        def found() -> re.Match[str] | None:
            if self.proc.poll() is not None:
                pytest.fail(
                    f"docinbox run exited ({self.proc.returncode}) before "
                    f"{pattern!r}:\n{self.output()}"
                )
            return re.search(pattern, self.output())

        return wait_for(found, timeout, f"{pattern!r} in docinbox's output")

    def wait_ready(self, timeout: float = 30.0) -> None:
        self.wait_for_line(r"watching ", timeout)

    @property
    def mock_url(self) -> str:
        return self.wait_for_line(r"embedded mock listening at (http://\S+)").group(1)

    def mock(self) -> MockAdmin:
        return MockAdmin(self.mock_url)

    def problems(self) -> list[str]:
        """Warning, error and traceback lines: what a user would take for trouble."""
        return [line for line in self.output().splitlines() if PROBLEM.search(line)]

    def send(self, signum: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signum)

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        """Stop it as a user or systemd would; returns its exit code."""
        self.send(signum)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(
                f"docinbox run did not stop within {timeout}s of "
                f"{signal.Signals(signum).name}:\n{self.output()}"
            )

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class MockAdmin:
    """The mock's admin API (SPEC "The mock's defaults")."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = httpx.Client(base_url=url, timeout=10, trust_env=False)

    def get(self, path: str) -> Any:
        response = self.http.get(f"/__admin/{path}")
        response.raise_for_status()
        return response.json()

    def post(self, path: str, body: Mapping[str, Any] | None = None) -> Any:
        response = self.http.post(f"/__admin/{path}", json=body or {})
        response.raise_for_status()
        return response.json() if response.content else None

    def requests(self) -> list[dict[str, Any]]:
        return list(self.get("requests")["requests"])

    def tasks(self) -> list[dict[str, Any]]:
        return list(self.get("tasks")["tasks"])


class MockProcess(MockAdmin):
    """``docinbox-mock`` in its own process, as a user starts it by hand."""

    def __init__(self, port: int = 0, *args: str) -> None:
        self.proc = subprocess.Popen(
            [str(BIN / "docinbox-mock"), "--port", str(port), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # its ready line, or EOF when it exits
        match = re.search(r"listening on (http://\S+)", line)
        if match is None:
            self.proc.kill()
            pytest.fail(f"docinbox-mock did not start: {line!r} {self.proc.communicate()}")
        super().__init__(match.group(1))
        self.port = int(match.group(1).rsplit(":", 1)[1])

    def stop(self) -> None:
        """As a crash or a pulled cable looks to docinbox: the port stops answering."""
        self.http.close()
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


class Workspace:
    """A folder as a user sets it up: the shipped config.toml, run from that folder."""

    def __init__(self, root: Path, *, bin_dir: Path = BIN) -> None:
        self.root = root
        #: Where the console scripts are installed (another virtual environment's bin/).
        self.bin = bin_dir
        self.home = root / "home"
        self.home.mkdir(parents=True, exist_ok=True)
        self.config = root / "config.toml"
        self._daemons: list[Daemon] = []
        #: Variables the user's shell exports for every docinbox command run here.
        self.user_env: dict[str, str] = {}
        text = SHIPPED_CONFIG.read_text("utf-8")
        # Free ports: tests (and a user's own docinbox) may run side by side.
        text = re.sub(r"(?m)^port *= *\d+", "port = 0", text)
        text = re.sub(r'(?m)^files_listen *= *"[^"]*"', 'files_listen = "127.0.0.1:0"', text)
        text = re.sub(r'(?m)^listen *= *"[^"]*"', 'listen = "127.0.0.1:0"', text)
        self.config.write_text(text, "utf-8")

    # --- the folders of the shipped config ---------------------------------------------

    @property
    def inbox(self) -> Path:
        return self.root / "inbox"

    @property
    def outbox(self) -> Path:
        return self.root / "outbox"

    @property
    def failed(self) -> Path:
        return self.root / "failed"

    @property
    def archive(self) -> Path:
        return self.root / "archive"

    @property
    def log(self) -> Path:
        return self.root / "state" / "docinbox.log"

    def edit_config(self, change: Callable[[str], str]) -> None:
        self.config.write_text(change(self.config.read_text("utf-8")), "utf-8")

    def set_key(self, section: str, key: str, value: str) -> None:
        """Set ``key = value`` (TOML text) in ``[section]``, adding either where missing."""
        text = self.config.read_text("utf-8")
        header = f"[{section}]"
        pattern = re.compile(rf"(?ms)^\[{re.escape(section)}\]\n(.*?)(?=^\[|\Z)")
        match = pattern.search(text)
        if match is None:
            text = text.rstrip("\n") + f"\n\n{header}\n{key} = {value}\n"
        else:
            body = match.group(1)
            line = re.compile(rf"(?m)^{re.escape(key)} *=.*$")
            body = (
                line.sub(f"{key} = {value}", body)
                if line.search(body)
                else f"{key} = {value}\n" + body
            )
            text = text[: match.start(1)] + body + text[match.end(1) :]
        self.config.write_text(text, "utf-8")

    def use_mock(self, url: str) -> None:
        """Point every service at a mock started by hand (``[mock] embedded = false``), the
        way the README says to use a mock as "just another base URL"; returns the
        environment with the mock's credentials, as a user's shell or ``.env`` holds them."""
        from mockserver import defaults

        self.set_key("mock", "embedded", "false")
        for name in ("nanonets", "mineru", "docparse"):
            self.set_key(f"services.{name}", "base_url", f'"{url}"')
        self.set_key("services.docparse", "files_url", '""')  # its own listen address
        self.user_env.update(
            {
                "NANONETS_API_KEY": defaults.NANONETS_API_KEY,
                "MINERU_API_KEY": defaults.MINERU_TOKEN,
                "DOCPARSE_API_KEY": defaults.DOCPARSE_TOKEN,
            }
        )

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in _SCRUB}
        env.update(
            {
                "HOME": str(self.home),
                "PYTHONUNBUFFERED": "1",
                "PATH": f"{self.bin}{os.pathsep}{env.get('PATH', '')}",
            }
        )
        env.update(self.user_env)
        env.update(extra or {})
        return env

    # --- commands ------------------------------------------------------------------------

    def docinbox(
        self,
        *args: str,
        env: Mapping[str, str] | None = None,
        timeout: float = 60,
        stdin: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """``docinbox ARGS`` run in this folder, as typed in a terminal."""
        return subprocess.run(
            [str(self.bin / "docinbox"), *args],
            cwd=self.root,
            env=self.env(env),
            text=True,
            capture_output=True,
            timeout=timeout,
            input=stdin,
        )

    def start(self, *args: str, env: Mapping[str, str] | None = None, name: str = "run") -> Daemon:
        """``docinbox run ARGS`` in this folder, in the background."""
        n = len(self._daemons) + 1
        output = self.root / f"{name}-{n}.out"
        with output.open("wb") as out:
            proc = subprocess.Popen(
                [str(self.bin / "docinbox"), "run", *args],
                cwd=self.root,
                env=self.env(env),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        daemon = Daemon(proc, output)
        self._daemons.append(daemon)
        return daemon

    def status(self) -> dict[str, Any]:
        result = self.docinbox("status", "--json")
        assert result.returncode == 0, result.stderr
        return dict(json.loads(result.stdout))

    def counts(self) -> dict[str, int]:
        return dict(self.status()["counts"])

    def drop(self, name: str, data: bytes) -> Path:
        """As a careful writer (or a file manager's move) does: written aside, renamed in."""
        target = self.inbox / name
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".{Path(name).name}.part"
        tmp.write_bytes(data)
        tmp.rename(target)
        return target

    def result(self, stem: str) -> dict[str, Any]:
        return dict(json.loads((self.outbox / stem / "result.json").read_text("utf-8")))

    def close(self) -> None:
        for daemon in self._daemons:
            daemon.kill()


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[Workspace]:
    ws = Workspace(tmp_path)
    try:
        yield ws
    finally:
        ws.close()
