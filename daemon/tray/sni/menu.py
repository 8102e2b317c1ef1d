"""The tray's menu over D-Bus (``com.canonical.dbusmenu``, the protocol every
StatusNotifierItem host reads; libdbusmenu's ``dbusmenu-dumper`` reads it in the tests).

The menu is the same pystray ``Menu`` every other backend shows (built by
daemon.tray.menu from the one menu model), read through pystray's public API: each
item's ``text``, ``enabled``, ``visible``, ``default``, ``submenu``, and calling the item
runs its action.  Each new menu gets a new layout revision and fresh item ids; the ids
of the previous layout still work, so a click that crosses an update is not lost.
"""

from collections.abc import Callable, Iterator
from typing import Annotated, Any

from dbus_fast import PropertyAccess, Variant
from dbus_fast.annotations import DBusSignature
from dbus_fast.service import ServiceInterface, dbus_method, dbus_property, dbus_signal

INTERFACE = "com.canonical.dbusmenu"
#: Item ids are revision * STRIDE + position: unique across the current and last layout.
STRIDE = 10_000

Str = Annotated[str, DBusSignature("s")]
Int = Annotated[int, DBusSignature("i")]
UInt = Annotated[int, DBusSignature("u")]
Bool = Annotated[bool, DBusSignature("b")]
Strs = Annotated[list[str], DBusSignature("as")]
Ints = Annotated[list[int], DBusSignature("ai")]
Var = Annotated[Variant, DBusSignature("v")]
Layout = Annotated[list[Any], DBusSignature("u(ia{sv}av)")]
GroupProps = Annotated[list[list[Any]], DBusSignature("a(ia{sv})")]
Events = Annotated[list[list[Any]], DBusSignature("a(isvu)")]
Updated = Annotated[list[list[Any]], DBusSignature("a(ia{sv})")]
Removed = Annotated[list[list[Any]], DBusSignature("a(ias)")]
ShowGroup = Annotated[list[list[int]], DBusSignature("aiai")]

#: Runs a clicked item's action, away from the D-Bus loop.
Perform = Callable[[Any], None]


def label(text: str) -> str:
    """dbusmenu reads ``_x`` as a mnemonic: a literal underscore is written twice."""
    return text.replace("_", "__")


class Node:
    """One item of a layout: its id, its properties, its children, its pystray item."""

    def __init__(self, ident: int, props: dict[str, Variant], item: Any = None) -> None:
        self.id = ident
        self.props = props
        self.item = item
        self.children: list[Node] = []

    def wire(self, depth: int, names: list[str]) -> list[Any]:
        """``(ia{sv}av)``, children down to *depth* (-1: all)."""
        props = {k: v for k, v in self.props.items() if not names or k in names}
        kids = [] if depth == 0 else self.children
        return [
            self.id,
            props,
            [Variant("(ia{sv}av)", c.wire(depth - 1 if depth > 0 else -1, names)) for c in kids],
        ]

    def walk(self) -> Iterator["Node"]:
        yield self
        for child in self.children:
            yield from child.walk()


def build(menu: Any, revision: int, separator: Any) -> Node:
    """The layout of a pystray ``Menu`` (the root is id 0)."""
    counter = iter(range(revision * STRIDE + 1, (revision + 1) * STRIDE))
    root = Node(0, {"children-display": Variant("s", "submenu")})

    def add(parent: Node, items: Any) -> None:
        for item in items:
            if not item.visible:
                continue
            if item is separator:
                parent.children.append(Node(next(counter), {"type": Variant("s", "separator")}))
                continue
            props = {
                "label": Variant("s", label(str(item.text))),
                "enabled": Variant("b", bool(item.enabled)),
                "visible": Variant("b", True),
            }
            node = Node(next(counter), props, item)
            if item.submenu is not None:
                props["children-display"] = Variant("s", "submenu")
                add(node, item.submenu.items)
            parent.children.append(node)

    add(root, menu.items if menu is not None else ())
    return root


class DBusMenu(ServiceInterface):
    """The menu's D-Bus face; :meth:`show` gives it a new pystray menu."""

    def __init__(self, *, perform: Perform, separator: Any) -> None:
        super().__init__(INTERFACE)
        self._perform = perform
        self._separator = separator
        self.revision = 0
        self.root = build(None, 0, separator)
        self._nodes: dict[int, Node] = {0: self.root}
        self._previous: dict[int, Node] = {}

    def show(self, menu: Any) -> None:
        """A new menu: a new revision, announced with ``LayoutUpdated``."""
        self.revision += 1
        self.root = build(menu, self.revision, self._separator)
        self._previous = self._nodes
        self._nodes = {n.id: n for n in self.root.walk()}
        self.LayoutUpdated(self.revision, 0)

    def node(self, ident: int) -> Node | None:
        return self._nodes.get(ident) or self._previous.get(ident)

    # --- properties ---------------------------------------------------------------------

    @dbus_property(access=PropertyAccess.READ)
    def Version(self) -> UInt:
        return 3

    @dbus_property(access=PropertyAccess.READ)
    def TextDirection(self) -> Str:
        return "ltr"

    @dbus_property(access=PropertyAccess.READ)
    def Status(self) -> Str:
        return "normal"

    @dbus_property(access=PropertyAccess.READ)
    def IconThemePath(self) -> Strs:
        return []

    # --- methods ------------------------------------------------------------------------

    @dbus_method()
    def GetLayout(self, parent_id: Int, recursion_depth: Int, property_names: Strs) -> Layout:
        node = self.node(parent_id) or self.root
        return [self.revision, node.wire(recursion_depth, property_names)]

    @dbus_method()
    def GetGroupProperties(self, ids: Ints, property_names: Strs) -> GroupProps:
        chosen = [self.node(i) for i in ids] if ids else list(self._nodes.values())
        return [
            [n.id, {k: v for k, v in n.props.items() if not property_names or k in property_names}]
            for n in chosen
            if n is not None
        ]

    @dbus_method()
    def GetProperty(self, ident: Int, name: Str) -> Var:
        node = self.node(ident)
        if node is None or name not in node.props:
            from dbus_fast import DBusError

            raise DBusError("org.freedesktop.DBus.Error.InvalidArgs", f"no {name} on {ident}")
        return node.props[name]

    @dbus_method()
    def Event(self, ident: Int, event_id: Str, data: Var, timestamp: UInt) -> None:
        self._event(ident, event_id)

    @dbus_method()
    def EventGroup(self, events: Events) -> Ints:
        return [ident for ident, event_id, _d, _t in events if not self._event(ident, event_id)]

    @dbus_method()
    def AboutToShow(self, ident: Int) -> Bool:
        return False  # the layout is always current

    @dbus_method()
    def AboutToShowGroup(self, ids: Ints) -> ShowGroup:
        return [[], [i for i in ids if self.node(i) is None]]

    @dbus_signal()
    def LayoutUpdated(
        self, revision: UInt, parent: Int
    ) -> Annotated[list[int], DBusSignature("ui")]:
        return [revision, parent]

    @dbus_signal()
    def ItemsPropertiesUpdated(self) -> Annotated[list[Any], DBusSignature("a(ia{sv})a(ias)")]:
        return [[], []]

    def _event(self, ident: int, event_id: str) -> bool:
        """A click runs the item's action; other events (hovered, opened) need nothing."""
        node = self.node(ident)
        if node is None:
            return False
        if event_id == "clicked" and node.item is not None and node.item.submenu is None:
            self._perform(node.item)
        return True
