"""``docinbox``: parse the command line, call the library, turn errors into exit codes.

Exit codes: 0 success; 1 a document failed (``run --once``) or nothing matched
(``retry``); 2 usage or configuration error; 3 the state database or another
daemon is in the way.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from . import __version__, config, lock, logs, redact
from .errors import ConfigError, DocinboxError, StoreError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_STORE = 0, 1, 2, 3

log = logging.getLogger("docinbox")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="docinbox", description="Hot-folder document parser.")
    p.add_argument("--version", action="version", version=f"docinbox {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    def with_config(sp: argparse.ArgumentParser) -> argparse.ArgumentParser:
        sp.add_argument(
            "-c",
            "--config",
            default="config.toml",
            type=Path,
            help="configuration file (default: ./config.toml)",
        )
        return sp

    run = with_config(sub.add_parser("run", help="run the daemon in the foreground"))
    run.add_argument("--no-tray", action="store_true", help="no tray icon")
    run.add_argument(
        "--once",
        action="store_true",
        help="process what is in the inbox, then exit (1 if any document failed)",
    )

    status = with_config(sub.add_parser("status", help="what docinbox is doing"))
    status.add_argument("--json", action="store_true", help="one JSON object")
    status.add_argument(
        "--limit",
        type=_count,
        default=50,
        help="documents to list, newest last (text; 0 lists none)",
    )

    retry = with_config(sub.add_parser("retry", help="put failed documents back in line"))
    which = retry.add_mutually_exclusive_group(required=True)
    which.add_argument("--failed", action="store_true", help="every failed document")
    which.add_argument("ids", nargs="*", type=int, default=[], metavar="ID")

    auto = sub.add_parser("autostart", help="start docinbox with your session")
    auto.add_argument("action", choices=("install", "remove"))
    auto.add_argument(
        "-c",
        "--config",
        type=Path,
        default=None,
        help="configuration the autostarted docinbox runs (default: "
        "$DOCINBOX_CONFIG, else ./config.toml when it exists, else the "
        "platform's config file)",
    )
    auto.add_argument(
        "--method",
        choices=("auto", "systemd", "xdg"),
        default="auto",
        help="Linux: a systemd user unit bound to the graphical session, or "
        "an XDG autostart entry (default: systemd where it is the "
        "service manager and the desktop starts graphical-session.target)",
    )
    auto.add_argument(
        "--no-enable",
        action="store_true",
        help="only write or delete the entry (no systemctl / launchctl / registry)",
    )
    return p


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(
            f"expected a number of documents (0 or more), got {text!r}"
        )
    return value


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _dispatch(args)
    except BrokenPipeError:
        # `docinbox status | head -1`: the reader is gone, which is no error of ours.
        # Point stdout at /dev/null so the interpreter's final flush stays quiet too.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK


def _dispatch(args: argparse.Namespace) -> int:
    try:
        if args.command == "run":
            return cmd_run(args)
        if args.command == "status":
            return cmd_status(args)
        if args.command == "retry":
            return cmd_retry(args)
        if args.command == "autostart":
            return cmd_autostart(args)
    except ConfigError as exc:
        print(f"docinbox: configuration error: {exc}", file=sys.stderr)
        if exc.hint:
            print(f"  {exc.hint}", file=sys.stderr)
        return EXIT_USAGE
    except StoreError as exc:
        print(f"docinbox: {exc}", file=sys.stderr)
        if exc.hint:
            print(f"  {exc.hint}", file=sys.stderr)
        return EXIT_STORE
    except DocinboxError as exc:
        print(f"docinbox: {exc}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_USAGE


def load(path: Path) -> config.Settings:
    """The configuration, its secrets registered at once: any text shown or stored from
    here on is scrubbed of every form of them (daemon.redact)."""
    settings = config.load(path)
    redact.register(settings.secrets())
    return settings


def cmd_run(args: argparse.Namespace) -> int:
    from .lifecycle import Daemon

    settings = load(args.config)
    daemon = Daemon(settings)
    try:
        # Before the first log line or tray icon: a second daemon on these folders is
        # refused (exit 3) without writing into the running one's log.
        daemon.lock()
        logs.setup(settings.log.level, settings.log.file, settings.secrets())
        # Ctrl-C and SIGTERM stop cleanly whoever ends up running the daemon on this
        # thread (the tray installs its own handlers when it takes the main thread).
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: daemon.stop())
        if args.no_tray or args.once:
            return daemon.run(once=args.once)
        from .tray import run_with_tray

        return run_with_tray(daemon.control, lambda: daemon.run(once=args.once))
    finally:
        daemon.close()


def _open_readonly(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from .store import open_store

    settings = load(args.config)
    path = settings.folders.state
    return settings, (open_store(path, readonly=True) if path.exists() else None)


def cmd_status(args: argparse.Namespace) -> int:
    from . import status

    settings, store = _open_readonly(args)
    report = status.report(store, settings, time.time())
    if args.json:
        print(json.dumps(report.as_json(), indent=2, ensure_ascii=False, default=str))
    else:
        print(report.as_text(limit=args.limit))
    return EXIT_OK


def cmd_retry(args: argparse.Namespace) -> int:
    from .actions import retry
    from .docfile import display_name
    from .health import paused_for_settings
    from .store import open_store

    settings = load(args.config)
    if not settings.folders.state.exists():
        print("docinbox: nothing to retry (no state database yet)")
        return EXIT_FAILED
    store = open_store(settings.folders.state, create=False)
    try:
        held = paused_for_settings(store)
        moved = retry(store, None if args.failed else list(args.ids))
    finally:
        store.close()
    for job in moved:
        print(f"  #{job.id} {display_name(job.rel_path)}: queued again")
    print(f"docinbox: {len(moved)} document{'s' if len(moved) != 1 else ''} back in line")
    holder = lock.running(settings.folders.state)
    for name, reason in held.items():
        print(f"  {name} was paused: {reason}")
        if holder is not None:
            # The daemon read its keys and configuration when it started.
            print(
                "  If you changed its key or the configuration, restart docinbox so it "
                "reads them again (docinbox run)."
            )
    return EXIT_OK if moved or args.failed else EXIT_FAILED


def cmd_autostart(args: argparse.Namespace) -> int:
    """Exit 0 when the entry is written or removed, even if it could not be enabled or
    stopped right now (no session bus: SSH, ``su``, CI); the warning says what to run."""
    import shlex

    from . import autostart

    host = autostart.Host.current(enable=not args.no_enable)
    if args.action == "install":
        path = (
            autostart.absolute(args.config, host) if args.config else autostart.default_config(host)
        )
        if args.config is None and not path.exists():
            raise ConfigError(
                f"no configuration: not in $DOCINBOX_CONFIG, ./config.toml or {path}",
                hint="Pass -c CONFIG, or run this in the folder that holds config.toml.",
            )
        config.load(path)  # a configuration that fails now would fail at every login
        report = autostart.install(path, host=host, method=args.method)
        for entry in report.entries:
            print(f"docinbox: autostart installed: {entry.describe()}")
            print(f"  runs: docinbox run -c {shlex.quote(str(path))}")
    else:
        report = autostart.remove(host=host)
        for entry in report.entries:
            print(f"docinbox: autostart removed: {entry.describe()}")
        if not report.entries:
            print("docinbox: no autostart entry to remove")
    for note in report.notes:
        print(f"  {note}")
    for warning in report.warnings:
        print(f"docinbox: {warning}", file=sys.stderr)
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
