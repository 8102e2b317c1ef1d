"""One notifier per running daemon, tray or no tray: it reads every status snapshot the
daemon publishes (:meth:`Control.subscribe`), decides what is news (coalesce.Notifier),
logs it at INFO (``docinbox.notify: <title>: <message>``) and hands it to the desktop's
notification service (desktop.DesktopSender).

It runs on a thread of its own with its own event loop, so a slow or absent
notification service never holds up the daemon; the daemon's subscribe callback only
queues the snapshot and wakes that loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path

from daemon.control import Control, StatusSnapshot
from daemon.notify.coalesce import Notice, Notifier
from daemon.notify.desktop import DesktopSender, Sender
from daemon.notify.problems import problems_of

log = logging.getLogger("docinbox.notify")

#: At a stop, notifications still pending get this long to go out.
STOP_GRACE = 3.0


class NotificationCenter:
    def __init__(
        self,
        control: Control,
        *,
        sender: Callable[[], Sender] | None = None,
        clock: Callable[[], float] = time.monotonic,
        quiet: float = 5.0,
        icon: Path | None = None,
    ) -> None:
        self.control = control
        self._icon = icon
        self._make_sender = sender or (lambda: DesktopSender(icon=self._app_icon()))
        self.notifier = Notifier(
            self._pending_add,
            clock=clock,
            quiet=quiet,
            outbox=control.outbox,
            log_path=control.log_path,
        )
        self._snapshots: queue.SimpleQueue[StatusSnapshot] = queue.SimpleQueue()
        self._pending: list[Notice] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._stopping = False
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._unsubscribe: Callable[[], None] | None = None

    # --- from the daemon's side --------------------------------------------------------

    def start(self) -> None:
        self._unsubscribe = self.control.subscribe(self._published)
        self._thread = threading.Thread(target=self._main, name="docinbox-notify", daemon=True)
        self._thread.start()
        self._ready.wait(5.0)

    def stop(self) -> None:
        """Send what is pending (the last documents of a run are news too), then end."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self._snapshots.put(self.control.snapshot())
        self._stopping = True
        self._poke()
        if self._thread is not None:
            self._thread.join(STOP_GRACE + 1.0)

    def _published(self) -> None:
        """The daemon's subscribe callback: queue the snapshot, wake the loop."""
        self._snapshots.put(self.control.snapshot())
        self._poke()

    def _poke(self) -> None:
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            with contextlib.suppress(RuntimeError):  # the loop already ended
                loop.call_soon_threadsafe(wake.set)

    # --- on its own thread -------------------------------------------------------------

    def _main(self) -> None:
        try:
            asyncio.run(self._run())
        except Exception:
            log.exception("notifications stopped")

    async def _run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._ready.set()
        sender = self._make_sender()
        while True:
            timeout = self.notifier.next_due()
            with contextlib.suppress(TimeoutError, asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
            self._wake.clear()
            self._observe()
            if self._stopping:
                self.notifier.flush()
                with contextlib.suppress(TimeoutError, asyncio.TimeoutError):
                    await asyncio.wait_for(self._send_all(sender), STOP_GRACE)
                return
            self.notifier.tick()
            await self._send_all(sender)

    def _app_icon(self) -> Path | None:
        """docinbox's own icon (the tray's idle picture) as a PNG the service can read."""
        if self._icon is None:
            return None
        try:
            from daemon.tray.icons import render
            from daemon.tray.state import Kind

            self._icon.parent.mkdir(parents=True, exist_ok=True)
            render(Kind.IDLE, None).save(self._icon, "PNG")
        except Exception as exc:  # no icon is no reason to go without notifications
            log.debug("notification icon: %s", exc)
            return None
        return self._icon

    def _observe(self) -> None:
        while True:
            try:
                snap = self._snapshots.get_nowait()
            except queue.Empty:
                return
            self.notifier.observe(snap, problems_of(snap))

    def _pending_add(self, notice: Notice) -> None:
        log.info("%s: %s", notice.title, notice.message)
        self._pending.append(notice)

    async def _send_all(self, sender: Sender) -> None:
        while self._pending:
            notice = self._pending.pop(0)
            try:
                await sender.send(notice)
            except Exception as exc:  # never take the daemon's notifications down for good
                log.info("notification not shown: %s: %s", type(exc).__name__, exc)
