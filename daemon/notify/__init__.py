"""Desktop notifications: what is news (``coalesce``), what the user must fix
(``problems``), the desktop's own notification service (``desktop``), and the
``center`` that ties them to a running daemon's status snapshots, tray or no tray."""

from daemon.notify.center import NotificationCenter
from daemon.notify.coalesce import Notice, Notifier

__all__ = ["Notice", "NotificationCenter", "Notifier"]
