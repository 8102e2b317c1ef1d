"""Helpers for the tray's tests on a real X server: start Xvfb and a tray host, look at
windows, click, take screenshots.  Every wait is on a condition with a deadline."""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from PIL import Image
from Xlib import X, display
from Xlib.error import XError
from Xlib.ext import xtest

T = TypeVar("T")
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "artifacts" / "tray"
SCREEN = (480, 400)
# The tray host's panel: top-left, 240x32; icons dock at its left end.
PANEL = (0, 0, 240, 32)


def wait_for(
    predicate: Callable[[], T],
    timeout: float = 10.0,
    what: str = "condition",
    interval: float = 0.02,
    probe: XProbe | None = None,
) -> T:
    """Poll *predicate* until it returns something truthy; fail after *timeout* seconds."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    last: Any = None
    while True:
        try:
            last = predicate()
        except XError as exc:  # a window unmapped or vanished between two calls
            last = exc
        except AttributeError as exc:  # python-xlib choked on an X error: reconnect
            last = exc
            for p in [probe, *_PROBES]:
                if p is not None:
                    p.reconnect()
        else:
            if last:
                return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
        pause.wait(interval)


def require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise AssertionError(
            f"{tool} is not installed: scripts/setup installs it (scripts/apt-packages.txt)"
        )
    return path


def start_xvfb(log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Xvfb on a free display number, learnt through -displayfd (no guessing, no sleeping)."""
    xvfb = require("Xvfb")
    read_fd, write_fd = os.pipe()
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [
                xvfb,
                "-displayfd",
                str(write_fd),
                "-screen",
                "0",
                f"{SCREEN[0]}x{SCREEN[1]}x24",
                "-nolisten",
                "tcp",
                "-noreset",
            ],
            pass_fds=(write_fd,),
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
    os.close(write_fd)
    data = b""
    deadline = time.monotonic() + 20
    try:
        while not data.endswith(b"\n"):
            left = deadline - time.monotonic()
            ready, _, _ = select.select([read_fd], [], [], max(0.0, left))
            if not ready:
                proc.kill()
                raise AssertionError(f"Xvfb did not report a display; see {log}")
            chunk = os.read(read_fd, 64)
            if not chunk:
                raise AssertionError(f"Xvfb exited ({proc.wait()}); see {log}")
            data += chunk
    finally:
        os.close(read_fd)
    return proc, f":{int(data)}"


def tray_owner(d: display.Display) -> int:
    atom = d.intern_atom(f"_NET_SYSTEM_TRAY_S{d.get_default_screen()}")
    owner = d.get_selection_owner(atom)
    return 0 if owner in (X.NONE, None) else owner.id


def start_tray_host(display_name: str, log: Path) -> subprocess.Popen[bytes]:
    """trayer: a small XEMBED system tray (a panel at the top-left of the screen)."""
    trayer = require("trayer")
    env = {**os.environ, "DISPLAY": display_name}
    w, h = PANEL[2], PANEL[3]
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [
                trayer,
                "--edge",
                "top",
                "--align",
                "left",
                "--widthtype",
                "pixel",
                "--width",
                str(w),
                "--heighttype",
                "pixel",
                "--height",
                str(h),
                "--transparent",
                "false",
                "--SetDockType",
                "false",
                "--iconspacing",
                "4",
                "--SetPartialStrut",
                "false",
                "--expand",
                "false",
                "--padding",
                "4",
            ],
            env=env,
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
    d = display.Display(display_name)
    try:
        wait_for(lambda: proc.poll() is not None or tray_owner(d), 20, "the tray selection")
        if proc.poll() is not None:
            raise AssertionError(f"trayer exited ({proc.returncode}); see {log}")
    finally:
        d.close()
    return proc


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


_PROBES: list[XProbe] = []


class XProbe:
    """A separate X connection through which the tests look at the screen like a user."""

    def __init__(self, display_name: str) -> None:
        self.name = display_name
        self.d = display.Display(display_name)
        self.root = self.d.screen().root
        _PROBES.append(self)

    def reconnect(self) -> None:
        """python-xlib sometimes cannot even parse an X error (AttributeError) and the
        connection is unusable after that: start a fresh one."""
        with contextlib.suppress(Exception):
            self.d.close()
        self.d = display.Display(self.name)
        self.root = self.d.screen().root

    def _w(self, w: Any) -> Any:
        """The same window, on the current connection."""
        return self.d.create_resource_object("window", w.id)

    def close(self) -> None:
        if self in _PROBES:
            _PROBES.remove(self)
        self.d.close()

    def windows(self, top: Any = None) -> list[Any]:
        out = []
        for child in (top or self.root).query_tree().children:
            out.append(child)
            out.extend(self.windows(child))
        return out

    def find(self, wm_class: str) -> Any:
        """The mapped window whose WM_CLASS contains *wm_class*, or None."""
        for w in self.windows():
            try:
                cls = w.get_wm_class()
                if cls and wm_class in cls and w.get_attributes().map_state == X.IsViewable:
                    return w
            except XError:
                continue
        return None

    def parent(self, w: Any) -> Any:
        w = self._w(w)
        return w.query_tree().parent

    def docked(self, w: Any) -> bool:
        w = self._w(w)
        """Reparented away from the root into the tray host's window."""
        return self.parent(w).id != self.root.id

    def title(self, w: Any) -> str:
        """_NET_WM_NAME (UTF-8, what GTK sets) or else WM_NAME (Latin-1, what xorg sets)."""
        w = self._w(w)
        net = w.get_full_text_property(
            self.d.intern_atom("_NET_WM_NAME"), self.d.intern_atom("UTF8_STRING")
        )
        if net:
            return net if isinstance(net, str) else net.decode("utf-8", "replace")
        name = w.get_wm_name()
        return name if isinstance(name, str) else ""

    def origin(self, w: Any) -> tuple[int, int]:
        w = self._w(w)
        pos = w.translate_coords(self.root, 0, 0)
        return -pos.x, -pos.y

    def viewable(self, w: Any) -> bool:
        w = self._w(w)
        return w.get_attributes().map_state == X.IsViewable

    def image(self, w: Any) -> Image.Image:
        """The window's pixels (only ask for a viewable window: GetImage on an unmapped
        one is an error that python-xlib does not always survive)."""
        if not self.viewable(w):
            raise XError(self.d.display, b"\0" * 32)
        w = self._w(w)
        g = w.get_geometry()
        raw = w.get_image(0, 0, g.width, g.height, X.ZPixmap, 0xFFFFFFFF)
        return Image.frombytes("RGB", (g.width, g.height), raw.data, "raw", "BGRX")

    def screenshot(self, path: Path, box: tuple[int, int, int, int] | None = None) -> Image.Image:
        img = self.image(self.root)
        if box is not None:
            img = img.crop(box)
        path.parent.mkdir(parents=True, exist_ok=True)
        img.save(path)
        return img

    def click(self, x: int, y: int, button: int = 1) -> None:
        xtest.fake_input(self.d, X.MotionNotify, x=x, y=y, root=self.root)
        xtest.fake_input(self.d, X.ButtonPress, button)
        xtest.fake_input(self.d, X.ButtonRelease, button)
        self.d.sync()

    def key(self, keysym_name: str) -> None:
        from Xlib import XK

        code = self.d.keysym_to_keycode(XK.string_to_keysym(keysym_name))
        xtest.fake_input(self.d, X.KeyPress, code)
        xtest.fake_input(self.d, X.KeyRelease, code)
        self.d.sync()

    def popup(self) -> Any:
        """A mapped override-redirect window that is not the tray host: an open menu."""
        for w in self.root.query_tree().children:
            try:
                a = w.get_attributes()
                g = w.get_geometry()
            except XError:
                continue
            if (
                a.override_redirect
                and a.map_state == X.IsViewable
                and g.width > 40
                and g.height > 40
            ):
                return w
        return None


def mean_difference(a: Image.Image, b: Image.Image) -> float:
    from PIL import ImageChops, ImageStat

    diff = ImageChops.difference(a.convert("RGB"), b.convert("RGB").resize(a.size))
    return sum(ImageStat.Stat(diff).mean) / 3
