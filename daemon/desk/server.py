"""The desk as the daemon runs it (daemon/lifecycle.py): the approvals' task, the index
caught up with results a crash left out, and — unless ``[dashboard] listen = ""`` — the
web server on the daemon's loop (daemon/servers/serve.py), whose address is recorded in
the store for ``docinbox dashboard`` (the port may have been chosen at start)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable, Coroutine
from typing import Any

from ..actions import DaemonControl
from ..errors import ConfigError
from ..pipeline.runtime import Runtime
from ..review import Approvals
from ..servers.serve import Served, serve
from . import index
from .app import Desk, build
from .auth import Keys, csrf_for, installation_token, token_path
from .pages import Pages

log = logging.getLogger("docinbox")

#: Where the running desk is, for ``docinbox dashboard``: ``{"url", "pid"}``.
URL_KEY = "dashboard:url"

Spawn = Callable[[Coroutine[Any, Any, None], str], object]


def split_listen(listen: str) -> tuple[str, int]:
    host, _sep, port = listen.rpartition(":")
    return host.strip("[]"), int(port)


def url_host(host: str) -> str:
    """The host to write in a URL for a listen address (a wildcard: the loopback)."""
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


class DeskServer:
    """The running desk; :meth:`stop` ends its event streams, then the server."""

    def __init__(self, rt: Runtime, served: Served | None, closing: asyncio.Event) -> None:
        self.rt = rt
        self.served = served
        self.closing = closing

    async def stop(self) -> None:
        self.closing.set()
        if self.served is not None:
            await self.served.stop()
            self.served = None
            with contextlib.suppress(Exception):
                self.rt.store.delete_meta(URL_KEY)


async def start(rt: Runtime, control: DaemonControl, spawn: Spawn) -> DeskServer:
    approvals = Approvals(
        store=rt.store,
        services=lambda: rt.services,
        outbox=rt.folders.outbox,
        clock=rt.clock,
        retry=lambda: rt.retry,
        changed=rt.changed,
    )
    spawn(approvals.run(), "approvals")
    spawn(_catch_up(rt), "search index")  # beside the start: an upgrade may bring many
    closing = asyncio.Event()
    if not rt.settings.dashboard.listen:
        return DeskServer(rt, None, closing)
    served = await _serve(rt, control, approvals, closing)
    return DeskServer(rt, served, closing)


async def _catch_up(rt: Runtime) -> None:
    caught = await index.catch_up(rt.store, rt.folders.outbox)
    if caught:
        log.info("search index: %d result(s) added", caught)


async def _serve(
    rt: Runtime, control: DaemonControl, approvals: Approvals, closing: asyncio.Event
) -> Served | None:
    """The dashboard's server; None (logged) when its address cannot be had."""
    listen = rt.settings.dashboard.listen
    host, port = split_listen(listen)
    token = installation_token(token_path(rt.folders.state))
    bound: list[int] = [port]
    keys = Keys(token, csrf_for(token), host, port=lambda: bound[0])
    folders = rt.folders
    pages = Pages(
        folders.state.parent / "desk-pages",
        [p for p in (folders.archive, folders.failed, folders.outbox) if p is not None],
    )
    desk = Desk(
        rt=rt,
        snapshot=control.snapshot,
        subscribe=control.subscribe,
        approvals_wake=approvals.wake,
        pages=pages,
        keys=keys,
        closing=closing,
    )
    try:
        served = await serve(build(desk), host, port, name="dashboard")
    except OSError as exc:
        log.error(
            "cannot serve the review desk at %s: %s. Set [dashboard] listen to a free "
            'address ("" serves none); everything else runs on.',
            listen,
            exc.strerror or exc,
        )
        return None
    bound[0] = served.port
    url = f"http://{url_host(host)}:{served.port}/"
    rt.store.set_meta(URL_KEY, {"url": url, "pid": os.getpid()})
    control.set_dashboard(f"{url}?token={token}")
    log.info("review desk at %s (docinbox dashboard opens it)", url)
    return served


def dashboard_url(store: Any, settings: Any, pid: int | None) -> str:
    """``docinbox dashboard``: the running desk's address with the token, from another
    process.  *pid*: the running daemon's (None: none runs)."""
    from ..errors import DocinboxError

    listen = settings.dashboard.listen
    if not listen:
        raise ConfigError(
            "the review desk is off ([dashboard] listen is empty)",
            hint='Set [dashboard] listen = "127.0.0.1:8767" and restart docinbox.',
        )
    token = installation_token(token_path(settings.folders.state))
    recorded = store.meta(URL_KEY) if store is not None else None
    if pid is None:
        raise DocinboxError(
            "no docinbox daemon is running on this configuration: nothing serves the desk",
            hint="Start one with: docinbox run",
        )
    if not isinstance(recorded, dict) or recorded.get("pid") != pid:
        raise DocinboxError(
            "the running daemon does not serve the review desk (yet)",
            hint="It may still be starting; else look at its log for the reason.",
        )
    return f"{recorded['url']}?token={token}"
