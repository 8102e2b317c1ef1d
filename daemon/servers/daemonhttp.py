"""The daemon's own HTTP server as the daemon runs it: started when a routed service
fetches documents from it (docparse) or services push results (``[callbacks]``), its
secrets kept in the store so URLs and seeds handed out survive a restart, and its three
hooks into the store: which file a signed URL may serve (only documents in flight),
which fetches happened, which jobs a callback names.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
from collections.abc import Callable, Mapping
from pathlib import Path

from .. import services as registry
from ..clock import Clock
from ..services import Callbacks
from ..settings import Settings
from ..store import State, Store
from .files import FileServer

log = logging.getLogger("docinbox")

FILES_SECRET_KEY = "fileserver_secret"
CALLBACK_SEED_KEY = "callback_seed"

#: ``wake(service, ids)``: a verified callback named these remote ids.
Wake = Callable[[str, Mapping[str, str]], None]


def persisted_secret(store: Store, key: str, make: Callable[[], str]) -> str:
    value = store.meta(key)
    if value is None:  # persisted: URLs and seeds handed out before a restart stay valid
        value = make()
        store.set_meta(key, value)
    return str(value)


def callbacks_for(settings: Settings, store: Store) -> Callbacks | None:
    """Where services push results, when ``[callbacks] public_url`` is set."""
    public = settings.callbacks.public_url
    if not public:
        return None
    seed = persisted_secret(store, CALLBACK_SEED_KEY, lambda: secrets.token_hex(16))
    return Callbacks(url=f"{public}/callbacks", seed=seed)


def needed(settings: Settings, callbacks: Callbacks | None) -> bool:
    return registry.fetches_documents(settings) or callbacks is not None


async def start(settings: Settings, store: Store, clock: Clock, wake: Wake) -> FileServer:
    """Listen where the fetching service's settings say (else ``[callbacks] listen``)."""
    listen, public = settings.callbacks.listen, settings.callbacks.public_url
    for name in registry.needed(settings):
        address = registry.REGISTRY[name].files_address(settings.services[name])
        if address is not None:
            listen, public = address
    secret = persisted_secret(store, FILES_SECRET_KEY, lambda: secrets.token_hex(32))

    def in_flight(job_id: int) -> Path | None:
        """The server's only way to a file: jobs sent and not yet finished."""
        try:
            job = store.get(job_id)
        except KeyError:
            return None
        if job.state not in (State.SUBMITTING, State.SUBMITTED) or not job.location:
            return None
        return Path(job.location)

    def fetched(job_id: int) -> None:
        """The parser fetched a document: after a crash it is known to have it."""
        with contextlib.suppress(KeyError):
            if "fetched_at" not in store.get(job_id).remote:
                store.checkpoint(job_id, {"fetched_at": clock.now()})

    files = FileServer(
        listen,
        public,
        bytes.fromhex(secret),
        in_flight,
        clock=clock,
        on_callback=wake,
        on_fetch=fetched,
    )
    await files.start()
    log.info("docinbox's HTTP server (documents for the parser, callbacks) at %s", files.url)
    return files
