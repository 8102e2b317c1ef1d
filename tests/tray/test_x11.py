"""The tray on a real X server (Xvfb) with a real tray host (trayer).

- xorg backend, in this process: the icon docks, its pixels and its title (the
  tooltip) follow the daemon's state, a real click opens the inbox, menu actions
  (through pystray's Menu objects: xorg shows no menu) reach Control, Quit ends it.
- xorg backend, as a child process: SIGTERM and Ctrl-C stop it cleanly.
- AppIndicator backend (Debian's python3-gi; it falls back to an XEMBED icon when no
  StatusNotifier host runs): the real GTK menu opens on a click and is driven with
  the keyboard.
Screenshots go to artifacts/tray/.
"""

from __future__ import annotations

import contextlib
import os
import queue
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

from daemon.control import DocumentSummary, ServiceHealth, StatusSnapshot
from daemon.tray.app import TrayApp, latin1_title, run_with_tray
from daemon.tray.icons import render
from daemon.tray.menu import find_item
from daemon.tray.state import Kind, derive
from daemon.tray.testing import FakeControl
from tests.tray.tray_xhelpers import (
    ARTIFACTS,
    PANEL,
    REPO,
    XProbe,
    mean_difference,
    require,
    wait_for,
)

pytestmark = pytest.mark.x11

ICON_CLASS = "docinboxSystemTrayIcon"  # pystray's xorg window class
WORKING = StatusSnapshot(
    counts={"queued": 3, "submitting": 1, "done": 4}, activity="uploading invoice.pdf"
)


def tooltip(snap: StatusSnapshot) -> str:
    return latin1_title(derive(snap, now=time.time()).tooltip)


def as_docked(kind: Kind, badge: str | None, size: tuple[int, int]) -> Image.Image:
    """What pystray's xorg backend paints for an icon (scaled, alpha dropped)."""
    img = Image.new("RGB", size)
    img.paste(render(kind, badge).resize(size, Image.Resampling.LANCZOS))
    return img


def shows(x11: XProbe, win: object, kind: Kind, badge: str | None) -> bool:
    seen = x11.image(win)
    return mean_difference(seen, as_docked(kind, badge, seen.size)) < 6


def panel_shot(x11: XProbe, name: str, scale: int = 3) -> Path:
    """The tray host's panel, enlarged so a 24-px icon is visible in the docs."""
    img = x11.screenshot(ARTIFACTS / f"{name}-actual-size.png", PANEL)
    big = img.resize((img.width * scale, img.height * scale), Image.Resampling.NEAREST)
    path = ARTIFACTS / f"{name}.png"
    big.save(path)
    return path


def test_xorg_icon_docks_follows_state_and_obeys_menu(x11: XProbe, tmp_path: Path) -> None:
    result_dir = tmp_path / "outbox" / "invoice"
    failed = StatusSnapshot(
        counts={"done": 8, "failed": 2},
        recent=(DocumentSummary(9, "invoice.pdf", "done", result_dir=result_dir),),
    )
    held = StatusSnapshot(
        counts={"queued": 2},
        services=(
            ServiceHealth("mineru", "paused", reason="quota exhausted (402)", error="quota"),
        ),
    )
    control = FakeControl(tmp_path, WORKING, exit_code=7, log_path=tmp_path / "docinbox.log")
    opened: queue.Queue[Path] = queue.Queue()
    errors: list[BaseException] = []

    def scenario(app: TrayApp) -> None:
        assert app.ready.wait(20), "the icon never became ready"
        assert app.backend_name == "xorg"
        win = wait_for(lambda: x11.find(ICON_CLASS), what="the icon window")
        wait_for(lambda: x11.docked(win), what="the icon docked in the tray host")
        wait_for(lambda: x11.title(win) == tooltip(WORKING), what="the working tooltip")
        assert x11.title(win) == "docinbox: 3 queued, 1 in progress - uploading invoice.pdf"
        wait_for(lambda: shows(x11, win, Kind.WORKING, "4"), what="the working icon")
        panel_shot(x11, "docked-working")

        # a real click on the icon runs the default action: open the inbox
        x, y = x11.origin(win)
        x11.click(x + 8, y + 8)
        assert opened.get(timeout=10) == control.inbox

        # the daemon's state changes → icon and tooltip follow (subscribe → refresh)
        control.set_snapshot(failed)
        wait_for(lambda: x11.title(win) == "docinbox: 2 documents failed", what="attention")
        wait_for(lambda: shows(x11, win, Kind.ATTENTION, "2"), what="the attention icon")
        panel_shot(x11, "docked-attention")

        find_item(app.icon.menu, "Recent documents", "✓ invoice.pdf")(app.icon)
        assert opened.get(timeout=10) == result_dir

        find_item(app.icon.menu, "Pause", "For 30 minutes")(app.icon)
        assert control.wait_for_call("pause") == ("pause", 1800)
        wait_for(
            lambda: x11.title(win).startswith("docinbox: paused"),
            what=f"paused (title: {x11.title(win)!r})",
        )
        wait_for(lambda: shows(x11, win, Kind.PAUSED, None), what="the paused icon")

        find_item(app.icon.menu, "Resume")(app.icon)
        assert control.wait_for_call("resume") == ("resume",)
        wait_for(lambda: x11.title(win) == "docinbox: 2 documents failed", what="resumed")

        find_item(app.icon.menu, "Retry failed (2)")(app.icon)
        assert control.wait_for_call("retry_failed") == ("retry_failed",)
        wait_for(lambda: x11.title(win) == "docinbox: 2 queued", what="retried documents")
        wait_for(lambda: shows(x11, win, Kind.WORKING, "2"), what="working again")

        control.set_snapshot(held)
        wait_for(
            lambda: x11.title(win) == "docinbox: mineru: quota exhausted (402) (2 waiting)",
            what="the error tooltip",
        )
        wait_for(lambda: shows(x11, win, Kind.ERROR, "!"), what="the error icon")
        panel_shot(x11, "docked-error")

        find_item(app.icon.menu, "Quit")(app.icon)
        control.wait_for_call("stop")

    def drive(app: TrayApp) -> None:
        try:
            scenario(app)
        except BaseException as exc:
            errors.append(exc)
        finally:
            control.stop()  # whatever happened, let run_with_tray return

    code = run_with_tray(
        control,
        control.run_daemon,
        backend="xorg",
        opener=opened.put,
        on_start=lambda app: threading.Thread(target=drive, args=(app,), daemon=True).start(),
    )
    if errors:
        raise errors[0]
    assert code == 7
    assert [c[0] for c in control.calls] == ["pause", "resume", "retry_failed", "stop", "stop"]
    assert control.subscribers == 0
    wait_for(lambda: x11.find(ICON_CLASS) is None, what="the icon gone after Quit")


# --- as a separate process ----------------------------------------------------------------


class Child:
    """tray_child.py in its own process; lines on stdout are read with deadlines."""

    def __init__(
        self, backend: str, root: Path, *, python_path: str = "", wrapper: tuple[str, ...] = ()
    ) -> None:
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(p for p in (python_path, str(REPO)) if p),
            "NO_AT_BRIDGE": "1",
        }
        self.stderr = (root / "child.stderr").open("wb")
        self.proc = subprocess.Popen(
            [
                *wrapper,
                sys.executable,
                str(Path(__file__).with_name("tray_child.py")),
                backend,
                str(root),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            env=env,
            start_new_session=True,
        )
        self.stderr_path = root / "child.stderr"
        self.lines: list[str] = []
        self._buf = b""

    def expect(self, prefix: str, timeout: float = 20) -> str:
        deadline = time.monotonic() + timeout
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while True:
            while b"\n" in self._buf:
                raw, self._buf = self._buf.split(b"\n", 1)
                line = raw.decode()
                self.lines.append(line)
                if line.startswith(prefix):
                    return line
            left = deadline - time.monotonic()
            ready, _, _ = select.select([fd], [], [], max(0.0, left))
            if not ready:
                raise AssertionError(
                    f"no {prefix!r} within {timeout}s; saw {self.lines}; "
                    f"stderr: {self.stderr_path.read_text()[-2000:]}"
                )
            chunk = os.read(fd, 4096)
            if not chunk:
                raise AssertionError(
                    f"child ended before {prefix!r}; saw {self.lines}; "
                    f"stderr: {self.stderr_path.read_text()[-2000:]}"
                )
            self._buf += chunk

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def close(self) -> None:
        # the whole process group: dbus-run-session's bus daemon too
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self.stderr.close()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signals_stop_the_daemon_cleanly(x11: XProbe, tmp_path: Path, sig: signal.Signals) -> None:
    child = Child("xorg", tmp_path)
    try:
        child.expect("READY xorg")
        win = wait_for(lambda: x11.find(ICON_CLASS), what="the icon window")
        wait_for(lambda: x11.docked(win), what="docked")
        child.proc.send_signal(sig)
        assert child.expect("CALL") == 'CALL ["stop"]'
        assert child.expect("EXIT") == "EXIT 5"
        assert child.proc.wait(20) == 5
        wait_for(lambda: x11.find(ICON_CLASS) is None, what="the icon gone")
        assert "Traceback" not in child.stderr_path.read_text()
    finally:
        child.close()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signals_with_the_glib_backend(
    x11: XProbe, tmp_path: Path, gi_path: str, sig: signal.Signals
) -> None:
    """pystray's GTK backends reset SIGINT to "die at once"; the tray puts its handler back."""
    child = Child(
        "appindicator", tmp_path, python_path=gi_path, wrapper=(require("dbus-run-session"), "--")
    )
    try:
        pid = int(child.expect("PID").split()[1])
        child.expect("READY appindicator", timeout=30)
        os.kill(pid, sig)
        assert child.expect("CALL") == 'CALL ["stop"]'
        assert child.expect("EXIT") == "EXIT 5"
        assert child.proc.wait(20) == 5
    finally:
        child.close()


# --- the AppIndicator backend: a real menu ---------------------------------------------------

DEBIAN_GI = Path("/usr/lib/python3/dist-packages/gi")


@pytest.fixture
def gi_path(tmp_path: Path) -> str:
    """PyGObject for the child: the venv's own if installed, else Debian's python3-gi
    (same CPython ABI), exposed alone so nothing else from Debian's Python leaks in."""
    probe = subprocess.run([sys.executable, "-c", "import gi"], capture_output=True)
    if probe.returncode == 0:
        return ""
    if not (DEBIAN_GI / "__init__.py").exists():
        pytest.fail("PyGObject is missing: scripts/setup installs python3-gi")
    shim = tmp_path / "gi-shim"
    shim.mkdir()
    (shim / "gi").symlink_to(DEBIAN_GI)
    return str(shim)


def open_menu(x11: XProbe, win: object) -> object:
    """Click the icon until its menu is up (a click during a re-dock can be lost)."""

    def clicked() -> object:
        menu = x11.popup()
        if menu is None:
            x, y = x11.origin(win)
            x11.click(x + 8, y + 8, button=1)
        return menu

    return wait_for(clicked, what="the menu to open", interval=0.5)


def test_appindicator_menu_opens_and_drives_control(
    x11: XProbe, tmp_path: Path, gi_path: str
) -> None:
    dbus = require("dbus-run-session")
    child = Child("appindicator", tmp_path, python_path=gi_path, wrapper=(dbus, "--"))
    try:
        ready = child.expect("READY", timeout=30)
        assert ready.startswith("READY appindicator docinbox: 3 queued")
        # Without a StatusNotifier host, libayatana-appindicator falls back to an XEMBED
        # icon, which trayer docks.
        win = wait_for(
            lambda: next(
                (w for w in x11.windows() if x11.title(w).startswith("docinbox") and x11.docked(w)),
                None,
            ),
            what="the docked indicator",
        )
        assert x11.popup() is None
        child.send("snapshot failed")
        wait_for(
            lambda: x11.title(win) == "docinbox: 2 documents failed",
            what="the indicator's title to follow the state",
        )
        menu = open_menu(x11, win)
        wait_for(lambda: x11.image(menu).getbbox() is not None, what="the menu drawn")
        # let GTK finish drawing the items: wait until the image stops changing
        last: list[bytes] = [b""]

        def settled() -> bool:
            now = x11.image(menu).tobytes()
            same, last[0] = now == last[0], now
            return same

        wait_for(settled, what="the menu to settle", interval=0.2)
        g = menu.get_geometry()
        mx, my = x11.origin(menu)
        shot = x11.screenshot(
            ARTIFACTS / "menu-open.png",
            (0, 0, min(480, mx + g.width + 8), min(400, my + g.height + 8)),
        )
        assert shot.height > 100
        # keyboard: Down skips the disabled status line → Open inbox; Down×3 → Pause ▸
        for key in ("Down", "Down", "Down", "Down", "Right", "Return"):
            x11.key(key)
        assert child.expect("CALL") == 'CALL ["pause", 1800]'
        wait_for(lambda: x11.popup() is None, what="the menu closed")
        open_menu(x11, win)
        x11.key("Up")  # from the bottom: Quit
        x11.key("Return")
        assert child.expect("CALL") == 'CALL ["stop"]'
        assert child.expect("EXIT") == "EXIT 5"
        assert child.proc.wait(20) == 5
    finally:
        child.close()
