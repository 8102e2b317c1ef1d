"""Reloading the configuration of a running daemon (``docinbox reload``, SIGHUP).

What can change while documents are in flight is applied at once: the services' settings
and credentials (the services are rebuilt; steps under way finish on the old clients,
which are closed once those steps end), the routes (documents not yet sent are routed
again), the retry policy, the duplicate rule, which results need review, the log level.
A service paused for its key or model is let go, as a restart would (the user changed
something). What the daemon built its running parts from — the folders, the watcher, the
embedded mock, the listen addresses (the desk's included), the log file — is named in
the log as "needs a restart" and keeps its old value until then.

A configuration that does not load (a typo, an unknown key) changes nothing: the error
is logged and returned, and the daemon runs on as it was.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from . import config, embedded, health, redact
from . import services as registry
from .errors import ConfigError
from .pipeline.runtime import Runtime
from .retry import RetryPolicy
from .servers.files import FileServer
from .services import Service, ServiceContext
from .settings import Settings
from .store import State

log = logging.getLogger("docinbox")

#: Parts of the configuration applied while running; the others need a restart.
LIVE = ("services", "routes", "retry", "daemon", "review", "log.level")
RESTART = ("folders", "watcher", "mock", "callbacks", "dashboard", "log.file")


@dataclass
class Outcome:
    """What a reload did, as ``docinbox reload`` reports it."""

    applied: list[str] = field(default_factory=list)
    restart: list[str] = field(default_factory=list)
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"applied": self.applied, "restart": self.restart, "error": self.error}


@dataclass
class Running:
    """The parts of a running daemon a reload touches (see daemon.lifecycle)."""

    rt: Runtime
    ctx: ServiceContext
    #: Steps under way (submissions, polls, probes): old clients close after them.
    work: set[asyncio.Task[None]]
    files: FileServer | None = None
    mock_url: str | None = None
    #: The services were given by the caller (tests): they are not rebuilt.
    rebuild: bool = True
    #: ``docinbox run -v/-q`` wins over the configuration's level.
    level_override: str | None = None
    closing: set[asyncio.Task[None]] = field(default_factory=set)


def differences(old: Settings, new: Settings) -> tuple[list[str], list[str]]:
    """(live, restart): the configuration's parts that changed, by name."""
    live = [part for part in LIVE if _part(old, part) != _part(new, part)]
    restart = [part for part in RESTART if _part(old, part) != _part(new, part)]
    restart += [
        f"services.{name} listen address"
        for name in sorted(set(old.services) & set(new.services))
        if _address(old, name) != _address(new, name)
    ]
    return live, restart


async def apply(running: Running) -> Outcome:
    """Read the configuration file again and apply what can change live."""
    rt = running.rt
    old = rt.settings
    try:
        new = await asyncio.to_thread(config.load, old.config_path)
    except ConfigError as exc:
        log.error("reload: %s; docinbox runs on with the configuration it had", exc.message)
        return Outcome(error=exc.message)
    redact.register(new.secrets())
    if running.mock_url is not None and new.mock.embedded:
        from mockserver import defaults

        new = embedded.rebase(new, running.mock_url, vars(defaults))
    live, restart = differences(old, new)
    merged = keep_restart_parts(old, new)
    rt.settings = merged
    rt.retry = RetryPolicy(merged.retry, rt.retry.rng)
    if "services" in live and running.rebuild:
        _swap_services(running, merged)
    if "routes" in live:
        _reroute(rt)
    health.clear(rt.store, only_user_fixable=True)  # the user acted, as a restart would
    level = running.level_override or merged.log.level
    logging.getLogger().setLevel(getattr(logging, level.upper()))
    rt.signals.all()
    log.info(
        "configuration reloaded from %s: %s",
        old.config_path,
        ", ".join(live) + " applied" if live else "nothing to apply",
    )
    if restart:
        log.warning(
            "reload: %s changed; that needs a restart (docinbox stop, then docinbox run)",
            ", ".join(restart),
        )
    return Outcome(applied=live, restart=restart)


def _part(settings: Settings, part: str) -> Any:
    value: Any = settings
    for name in part.split("."):
        value = getattr(value, name)
    if part == "services":
        return {n: _comparable(s) for n, s in value.items()}
    return value


def _comparable(service: Any) -> Any:
    """A service's settings as values (a Secret compares by what it holds)."""
    fields = dataclasses.asdict(dataclasses.replace(service, credential=None))
    return {**fields, "credential": service.credential.value}


def _address(settings: Settings, name: str) -> Any:
    return registry.REGISTRY[name].files_address(settings.services[name])


def keep_restart_parts(old: Settings, new: Settings) -> Settings:
    """The new settings, except what the running parts were built from."""
    services = dict(new.services)
    for name in set(old.services) & set(new.services):
        if _address(old, name) != _address(new, name):
            services[name] = old.services[name]
    return dataclasses.replace(
        new,
        config_path=old.config_path,
        folders=old.folders,
        watcher=old.watcher,
        mock=old.mock,
        callbacks=old.callbacks,
        dashboard=old.dashboard,
        log=dataclasses.replace(new.log, file=old.log.file),
        services=services,
    )


def _swap_services(running: Running, settings: Settings) -> None:
    """New clients for every service the routes name (and those with documents still
    out with them); the old ones close once the steps under way end."""
    rt = running.rt
    current: dict[str, Service] = rt.services  # type: ignore[assignment]  # the daemon's dict
    wanted = registry.needed(settings) | set(current)
    fresh: dict[str, Service] = {}
    for name in sorted(wanted):
        if name not in settings.services:
            continue  # no section any more: the old client finishes what it has
        fresh[name] = registry.REGISTRY[name](settings.services[name], running.ctx)
    replaced = [current[n] for n in fresh if n in current]
    current.update(fresh)  # the runtime and the scheduler share this dict
    if running.files is not None:
        running.files.verifiers.update({n: s.callback_ids for n, s in fresh.items()})
    task = asyncio.create_task(_close_after(replaced, set(running.work)), name="reload:close")
    running.closing.add(task)
    task.add_done_callback(running.closing.discard)


async def _close_after(services: Iterable[Service], steps: set[asyncio.Task[None]]) -> None:
    if steps:
        await asyncio.gather(*steps, return_exceptions=True)
    for service in services:
        with contextlib.suppress(Exception):
            await service.aclose()


def _reroute(rt: Runtime) -> None:
    """Documents not yet sent are routed again; those a step has already taken keep
    their route (put back at once: no await between, so no step sees them unrouted)."""
    taken: dict[int, tuple[str, Mapping[str, Any]]] = {}
    for job_id in list(rt.inflight):
        with contextlib.suppress(KeyError):
            job = rt.store.get(job_id)
            if job.state is State.QUEUED and job.service:
                taken[job_id] = (job.service, job.options)
    rt.store.clear_routes()
    if taken:
        rt.store.set_routes((i, svc, opts) for i, (svc, opts) in taken.items())
