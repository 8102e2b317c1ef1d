"""The tray icon and its menu (issue 6); the CLI calls :func:`run_with_tray`."""

from daemon.tray.app import TrayApp, run_with_tray

__all__ = ["TrayApp", "run_with_tray"]
