"""The StatusNotifierItem object (``org.kde.StatusNotifierItem``): the icon as
freedesktop.org's StatusNotifierItem specification describes it, which KDE Plasma,
GNOME's AppIndicator extension, XFCE's and Cinnamon's panels, waybar and others host.

Properties are read by the host when it is told something changed (the ``New*``
signals); a click calls :meth:`Activate` (docinbox's default action, Open inbox); the
menu is the DBusMenu object named by ``Menu`` (daemon.tray.sni.menu).
"""

from collections.abc import Callable
from typing import Annotated, Any

from dbus_fast import PropertyAccess
from dbus_fast.annotations import DBusSignature
from dbus_fast.service import ServiceInterface, dbus_method, dbus_property, dbus_signal
from PIL import Image

INTERFACE = "org.kde.StatusNotifierItem"
PATH = "/StatusNotifierItem"
MENU_PATH = "/MenuBar"
#: Sizes handed to the host; it picks the one that fits its panel.
SIZES = (16, 22, 24, 32, 48, 64)

Pixmaps = Annotated[list[list[Any]], DBusSignature("a(iiay)")]
ToolTip = Annotated[list[Any], DBusSignature("(sa(iiay)ss)")]
Str = Annotated[str, DBusSignature("s")]
Int = Annotated[int, DBusSignature("i")]
Bool = Annotated[bool, DBusSignature("b")]
ObjectPath = Annotated[str, DBusSignature("o")]


def pixmaps(image: Image.Image | None) -> list[list[Any]]:
    """The image at each of :data:`SIZES`, as the spec wants it: ARGB32, network byte
    order (bytes A, R, G, B per pixel), row by row."""
    if image is None:
        return []
    rgba = image.convert("RGBA")
    out: list[list[Any]] = []
    for size in SIZES:
        scaled = (
            rgba
            if rgba.size == (size, size)
            else rgba.resize((size, size), Image.Resampling.LANCZOS)
        )
        r, g, b, a = scaled.split()
        out.append([size, size, Image.merge("RGBA", (a, r, g, b)).tobytes()])
    return out


class StatusNotifierItem(ServiceInterface):
    """The item's D-Bus face; :class:`daemon.tray.sni.Icon` sets what it shows."""

    def __init__(self, *, ident: str, activate: Callable[[], None]) -> None:
        super().__init__(INTERFACE)
        self._ident = ident
        self._activate = activate
        self.pixmaps: list[list[Any]] = []
        self.tooltip = ""

    # --- what the host reads ---------------------------------------------------------

    @dbus_property(access=PropertyAccess.READ)
    def Category(self) -> Str:
        return "ApplicationStatus"

    @dbus_property(access=PropertyAccess.READ)
    def Id(self) -> Str:
        return self._ident

    @dbus_property(access=PropertyAccess.READ)
    def Title(self) -> Str:
        return "docinbox"

    @dbus_property(access=PropertyAccess.READ)
    def Status(self) -> Str:
        return "Active"

    @dbus_property(access=PropertyAccess.READ)
    def WindowId(self) -> Int:
        return 0

    @dbus_property(access=PropertyAccess.READ)
    def IconName(self) -> Str:
        return ""  # the pixmaps below are the icon: each state has its own picture

    @dbus_property(access=PropertyAccess.READ)
    def IconThemePath(self) -> Str:
        return ""

    @dbus_property(access=PropertyAccess.READ)
    def IconPixmap(self) -> Pixmaps:
        return self.pixmaps

    @dbus_property(access=PropertyAccess.READ)
    def OverlayIconName(self) -> Str:
        return ""

    @dbus_property(access=PropertyAccess.READ)
    def OverlayIconPixmap(self) -> Pixmaps:
        return []

    @dbus_property(access=PropertyAccess.READ)
    def AttentionIconName(self) -> Str:
        return ""

    @dbus_property(access=PropertyAccess.READ)
    def AttentionIconPixmap(self) -> Pixmaps:
        return []

    @dbus_property(access=PropertyAccess.READ)
    def AttentionMovieName(self) -> Str:
        return ""

    @dbus_property(access=PropertyAccess.READ)
    def ToolTip(self) -> ToolTip:
        return ["", [], "docinbox", self.tooltip]

    @dbus_property(access=PropertyAccess.READ)
    def ItemIsMenu(self) -> Bool:
        return False  # a click is the default action; the menu is a right click

    @dbus_property(access=PropertyAccess.READ)
    def Menu(self) -> ObjectPath:
        return MENU_PATH

    # --- what the host calls ----------------------------------------------------------

    @dbus_method()
    def Activate(self, x: Int, y: Int) -> None:
        self._activate()

    @dbus_method()
    def SecondaryActivate(self, x: Int, y: Int) -> None:
        """A middle click: nothing of its own (the spec leaves it to the item)."""

    @dbus_method()
    def ContextMenu(self, x: Int, y: Int) -> None:
        """Only for hosts that cannot show the DBusMenu themselves: none of docinbox's
        own (every host named in daemon/tray/sni/__init__.py reads ``Menu``)."""

    @dbus_method()
    def Scroll(self, delta: Int, orientation: Str) -> None:
        """Nothing to scroll."""

    # --- what it tells the host -------------------------------------------------------

    @dbus_signal()
    def NewIcon(self) -> None:
        return None

    @dbus_signal()
    def NewToolTip(self) -> None:
        return None

    @dbus_signal()
    def NewTitle(self) -> None:
        return None

    @dbus_signal()
    def NewStatus(self) -> Str:
        return "Active"
