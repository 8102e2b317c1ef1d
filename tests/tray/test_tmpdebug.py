import threading
from pathlib import Path
from daemon.control import StatusSnapshot
from daemon.tray.app import run_with_tray
from daemon.tray.testing import FakeControl
from tests.tray.tray_xhelpers import wait_for

def test_dbg(x11, tmp_path: Path) -> None:
    control = FakeControl(tmp_path, StatusSnapshot(counts={"queued": 1}))
    def drive(app):
        app.ready.wait(10)
        win = wait_for(lambda: x11.find("docinboxSystemTrayIcon"))
        wait_for(lambda: x11.docked(win))
        print("DOCKED", flush=True)
        threading.Event().wait(1)
        control.stop()
    run_with_tray(control, control.run_daemon, backend="xorg",
                  on_start=lambda app: threading.Thread(target=drive, args=(app,), daemon=True).start())
