"""A docinbox stand-in with a tray, run as its own process by test_x11.py.

``python tray_child.py BACKEND ROOT`` runs :func:`run_with_tray` with a FakeControl
(so signals, the main thread and process exit are real) and talks on stdio:
it prints ``PID <pid>``, ``READY <backend> <tooltip>`` once the icon is shown,
``CALL <json>`` for each Control call, ``OPEN <path>`` for each file it would open, ``EXIT <code>``
at the end; it reads ``snapshot <name>`` lines to change the daemon's state.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from daemon.control import DocumentSummary, ServiceHealth, StatusSnapshot  # noqa: E402
from daemon.tray.app import TrayApp, run_with_tray  # noqa: E402
from daemon.tray.testing import FakeControl  # noqa: E402

SNAPSHOTS = {
    "working": StatusSnapshot(
        counts={"queued": 3, "submitting": 1, "done": 4}, activity="uploading invoice.pdf"
    ),
    "failed": StatusSnapshot(
        counts={"done": 8, "failed": 2},
        recent=(
            DocumentSummary(9, "broken.pdf", "failed", error="unreadable", message="not a PDF"),
            DocumentSummary(8, "invoice.pdf", "done", result_dir=Path("/tmp/outbox/invoice")),
            DocumentSummary(7, "receipt.png", "done", result_dir=Path("/tmp/outbox/receipt")),
        ),
    ),
    "held": StatusSnapshot(
        counts={"queued": 2},
        services=(
            ServiceHealth("mineru", "paused", reason="quota exhausted (402)", error="quota"),
        ),
    ),
}

_out = threading.Lock()


def say(*words: object) -> None:
    with _out:
        print(*words, flush=True)


class EchoingControl(FakeControl):
    def _record(self, *call: object) -> None:
        say("CALL", json.dumps(call))
        super()._record(*call)


def main() -> int:
    backend, root = sys.argv[1], Path(sys.argv[2])
    say("PID", os.getpid())
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )
    control = EchoingControl(
        root,
        SNAPSHOTS[sys.argv[3] if len(sys.argv) > 3 else "working"],
        exit_code=5,
        log_path=root / "docinbox.log",
    )

    def commands() -> None:
        for line in sys.stdin:
            word, _, arg = line.strip().partition(" ")
            if word == "snapshot":
                control.set_snapshot(SNAPSHOTS[arg])
            elif word == "stop":
                control.stop()

    def on_start(app: TrayApp) -> None:
        def announce() -> None:
            if app.ready.wait(30):
                say("READY", app.backend_name, app.state.tooltip)

        threading.Thread(target=announce, daemon=True).start()
        threading.Thread(target=commands, daemon=True).start()

    code = run_with_tray(
        control,
        control.run_daemon,
        backend=backend,
        opener=lambda p: say("OPEN", p),
        on_start=on_start,
    )
    say("EXIT", code)
    return code


if __name__ == "__main__":
    sys.exit(main())
