"""``docinbox``: parse the command line, call the library, turn errors into exit codes.

Exit codes: 0 success; 1 a document failed (``run --once``), nothing matched
(``retry``, ``search``), or no daemon runs to pause, resume, stop, reload or serve the
dashboard; 2 usage or
configuration error; 3 the state database or another daemon is in the way.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import __version__, lock, logs, redact
from .errors import ConfigError, DocinboxError, StoreError

if TYPE_CHECKING:
    from .config import Settings

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_STORE = 0, 1, 2, 3

log = logging.getLogger("docinbox")


def _common() -> argparse.ArgumentParser:
    """-v/-q, on every command."""
    common = argparse.ArgumentParser(add_help=False)
    talk = common.add_mutually_exclusive_group()
    talk.add_argument(
        "-v", "--verbose", action="store_true", help="say more (run: log level debug)"
    )
    talk.add_argument(
        "-q", "--quiet", action="store_true", help="only errors (run: log level warning)"
    )
    return common


def _with_config(sp: argparse.ArgumentParser) -> argparse.ArgumentParser:
    sp.add_argument(
        "-c",
        "--config",
        default=None,
        type=Path,
        help="configuration file (default: $DOCINBOX_CONFIG, else ./config.toml when it "
        "exists, else the platform's, written by `docinbox init`)",
    )
    return sp


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="docinbox", description="Hot-folder document parser.")
    p.add_argument("--version", action="version", version=f"docinbox {__version__}")
    # also before the command (docinbox -q stop); merged in main()
    p.add_argument("-v", "--verbose", dest="verbose_first", action="store_true", help="say more")
    p.add_argument("-q", "--quiet", dest="quiet_first", action="store_true", help="only errors")
    sub = p.add_subparsers(dest="command", required=True)
    common = [_common()]

    def command(name: str, text: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=text, description=text, parents=common)

    run = _with_config(command("run", "run the daemon in the foreground"))
    run.add_argument("--no-tray", action="store_true", help="no tray icon")
    run.add_argument(
        "--once",
        action="store_true",
        help="process what is in the inbox, then exit (1 if any document failed)",
    )
    status = _with_config(command("status", "what docinbox is doing"))
    status.add_argument("--json", action="store_true", help="one JSON object")
    status.add_argument(
        "--limit", type=_count, default=50, help="documents to list, newest last (0: none)"
    )
    retry = _with_config(command("retry", "put failed documents back in line"))
    which = retry.add_mutually_exclusive_group(required=True)
    which.add_argument("--failed", action="store_true", help="every failed document")
    which.add_argument("ids", nargs="*", type=int, default=[], metavar="ID")
    command("init", "write the default configuration to this platform's config folder")
    pause = _with_config(command("pause", "send no new documents until resumed"))
    pause.add_argument(
        "--for",
        dest="duration",
        type=_duration,
        default=None,
        metavar="DURATION",
        help="resume by itself after this long: 90s, 30m, 1h, 1h30m (default: until resumed)",
    )
    _with_config(command("resume", "end a pause"))
    _with_config(command("stop", "stop the running daemon cleanly"))
    _with_config(command("reload", "read the configuration again (what can change live)"))
    _autostart(command("autostart", "start docinbox with your session"))
    _desk_commands(command)
    return p


def _desk_commands(command: Callable[[str, str], argparse.ArgumentParser]) -> None:
    """The review desk's: dashboard, export, search."""
    dash = _with_config(command("dashboard", "open the review desk in your browser"))
    dash.add_argument(
        "--print-url", action="store_true", help="print its address (token included) instead"
    )
    _export(_with_config(command("export", "the results as a spreadsheet (csv, xlsx, jsonl)")))
    search = _with_config(command("search", "search every result (words), or rebuild the index"))
    search.add_argument("words", nargs="*", help="words every result found must hold")
    search.add_argument(
        "--rebuild", action="store_true", help="read every result in the outbox into the index anew"
    )


def _export(exp: argparse.ArgumentParser) -> None:
    exp.add_argument("--format", required=True, choices=("csv", "xlsx", "jsonl"))
    exp.add_argument(
        "-o",
        "--output",
        type=Path,
        default=None,
        help="file to write (default: stdout for csv and jsonl; csv tables go beside it "
        "as NAME-tables.csv)",
    )
    exp.add_argument(
        "--folder", default=None, metavar="GLOB", help="inbox folder, e.g. 'facturas/**'"
    )
    exp.add_argument(
        "--since", default=None, metavar="DATE", help="finished on or after, e.g. 2025-12-01"
    )
    exp.add_argument(
        "--state",
        default="done",
        choices=("done", "approved"),
        help="done: all; approved: reviewed",
    )


def _autostart(auto: argparse.ArgumentParser) -> None:
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


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _duration(text: str) -> float:
    """``90s``, ``30m``, ``1h``, ``1h30m``, ``2d``; a bare number is minutes."""
    import re

    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([smhd])", text.strip().lower())
    rebuilt = "".join(f"{n}{u}" for n, u in parts)
    if re.fullmatch(r"\d+(\.\d+)?", text.strip()):
        seconds = float(text) * 60
    elif parts and rebuilt == re.sub(r"\s+", "", text.strip().lower()):
        seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    else:
        seconds = 0
    if seconds <= 0:
        raise argparse.ArgumentTypeError(
            f"expected a duration such as 30m, 1h or 1h30m, got {text!r}"
        )
    return seconds


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
    parser = _parser()
    args = parser.parse_args(argv)
    args.verbose = args.verbose or args.verbose_first
    args.quiet = args.quiet or args.quiet_first
    if args.verbose and args.quiet:
        parser.error("-v and -q contradict each other")
    try:
        return _dispatch(args)
    except BrokenPipeError:
        # `docinbox status | head -1`: the reader is gone, which is no error of ours.
        # Point stdout at /dev/null so the interpreter's final flush stays quiet too.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK


def _commands() -> dict[str, Callable[[argparse.Namespace], int]]:
    return {
        "run": cmd_run,
        "status": cmd_status,
        "retry": cmd_retry,
        "init": cmd_init,
        "pause": cmd_pause,
        "resume": cmd_resume,
        "stop": cmd_stop,
        "reload": cmd_reload,
        "autostart": cmd_autostart,
        "dashboard": cmd_dashboard,
        "export": cmd_export,
        "search": cmd_search,
    }


def _dispatch(args: argparse.Namespace) -> int:
    if args.command != "run":  # run sets up its own log (file and level)
        level = logging.DEBUG if args.verbose else logging.ERROR if args.quiet else logging.WARNING
        logging.basicConfig(level=level, format="docinbox: %(message)s")
    try:
        return _commands()[args.command](args)
    except ConfigError as exc:
        _error(f"configuration error: {exc}", exc.hint)
        return EXIT_USAGE
    except StoreError as exc:
        _error(str(exc), exc.hint)
        return EXIT_STORE
    except DocinboxError as exc:
        _error(str(exc), exc.hint)
        return EXIT_FAILED


def _error(message: str, hint: str = "") -> None:
    print(f"docinbox: {message}", file=sys.stderr)
    if hint:
        print(f"  {hint}", file=sys.stderr)


def _say(args: argparse.Namespace, text: str) -> None:
    """What a command did, on stdout; -q keeps it quiet."""
    if not args.quiet:
        print(text)


def load(path: Path | None) -> Settings:
    """The configuration (``-c``, else :func:`daemon.config.locate`'s), its secrets
    registered at once: any text shown or stored from here on is scrubbed of every form
    of them (daemon.redact).  The configuration (with every service's declarations) is
    imported here, not with this module: ``--help`` does not need it, nor does the
    inspection helper, whose start imports the console script's module again."""
    from . import config

    settings = config.load_located(path)
    redact.register(settings.secrets())
    return settings


def cmd_run(args: argparse.Namespace) -> int:
    from .lifecycle import Daemon

    settings = load(args.config)
    daemon = Daemon(settings, notify=not args.once)
    daemon.level_override = "debug" if args.verbose else "warning" if args.quiet else None
    try:
        # Before the first log line or tray icon: a second daemon on these folders is
        # refused (exit 3) without writing into the running one's log.
        daemon.lock()
        logs.setup(
            daemon.level_override or settings.log.level, settings.log.file, settings.secrets()
        )
        # Ctrl-C and SIGTERM stop cleanly whoever ends up running the daemon on this
        # thread (the tray installs its own handlers when it takes the main thread);
        # SIGHUP reads the configuration again, as daemons do.
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: daemon.stop())
        if hasattr(signal, "SIGHUP"):
            signal.signal(signal.SIGHUP, lambda *_: daemon.reload())
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
        _say(args, f"  #{job.id} {display_name(job.rel_path)}: queued again")
    _say(args, f"docinbox: {len(moved)} document{'s' if len(moved) != 1 else ''} back in line")
    holder = lock.running(settings.folders.state)
    for name, reason in held.items():
        _say(args, f"  {name} was paused: {reason}")
        if holder is not None:
            _say(args, "  If you changed its key or the configuration: docinbox reload")
    return EXIT_OK if moved or args.failed else EXIT_FAILED


def cmd_init(args: argparse.Namespace) -> int:
    from . import config

    path, written = config.init()
    if not written:
        _say(args, f"docinbox: {path} already exists; left as it is")
        return EXIT_OK
    settings = config.load(path)
    _say(args, f"docinbox: wrote {path}")
    _say(args, f"  drop documents into {settings.folders.inbox}")
    _say(args, f"  results go to {settings.folders.outbox}")
    _say(args, f"  job database and log: {settings.folders.state.parent}")
    _say(args, "  it runs offline against the embedded mock; edit it for the real services")
    _say(args, "  start it with: docinbox run   (at every login: docinbox autostart install)")
    return EXIT_OK


def _with_store(args: argparse.Namespace, act: Callable[[Any, lock.Holder], Any]) -> Any:
    """*act(store, holder)* on the running daemon's store (none running: an error)."""
    from . import actions
    from .store import open_store

    settings = load(args.config)
    holder = actions.running(settings.folders.state)
    store = open_store(settings.folders.state, create=False)
    try:
        return act(store, holder)
    finally:
        store.close()


def cmd_pause(args: argparse.Namespace) -> int:
    from . import actions
    from .clock import SystemClock

    until = _with_store(args, lambda store, _h: actions.pause(store, SystemClock(), args.duration))
    when = (
        "until resumed (docinbox resume)"
        if args.duration is None
        else f"until {time.strftime('%H:%M', time.localtime(until))}"
    )
    _say(args, f"docinbox: paused {when}; documents under way finish, new ones wait")
    return EXIT_OK


def cmd_resume(args: argparse.Namespace) -> int:
    from . import actions

    _with_store(args, lambda store, _h: actions.resume(store))
    _say(args, "docinbox: resumed")
    return EXIT_OK


def cmd_stop(args: argparse.Namespace) -> int:
    from . import actions

    settings = load(args.config)

    def ask(store: Any, holder: lock.Holder) -> lock.Holder:
        actions.request_stop(store, holder)
        return holder

    holder = _with_store(args, ask)
    _say(args, f"docinbox: asked the daemon (process {holder.pid}) to stop…")
    state = settings.folders.state
    if actions.wait_until(lambda: lock.running(state) is None, actions.STOP_PATIENCE) is None:
        raise DocinboxError(
            f"the daemon (process {holder.pid}) has not stopped after "
            f"{actions.STOP_PATIENCE:.0f} s",
            hint="It may be finishing a long upload; look at its log, or end the process.",
        )
    _say(args, "docinbox: stopped")
    return EXIT_OK


def cmd_reload(args: argparse.Namespace) -> int:
    from . import actions

    def ask(store: Any, holder: lock.Holder) -> Any:
        ident = actions.request_reload(store, holder)
        return actions.wait_until(
            lambda: actions.reload_result(store, ident), actions.RELOAD_PATIENCE
        )

    try:
        result = _with_store(args, ask)
    except ConfigError as exc:  # checked here first: the daemon would refuse it the same way
        raise ConfigError(
            exc.message,
            hint="Nothing was reloaded: a running docinbox runs on as it was. Fix the "
            "file, then docinbox reload again.",
        ) from exc
    if result is None:
        raise DocinboxError(
            f"the daemon did not answer within {actions.RELOAD_PATIENCE:.0f} s",
            hint="Look at its log; SIGHUP also reloads it (kill -HUP <pid>).",
        )
    if result.get("error"):
        raise ConfigError(f"{result['error']}", hint="Nothing changed: docinbox runs on as it was.")
    applied, restart = result.get("applied") or [], result.get("restart") or []
    _say(
        args,
        "docinbox: reloaded; "
        + (f"applied: {', '.join(applied)}" if applied else "nothing changed"),
    )
    if restart:
        _say(
            args, f"  needs a restart to apply: {', '.join(restart)} (docinbox stop; docinbox run)"
        )
    return EXIT_OK


def cmd_autostart(args: argparse.Namespace) -> int:
    """Exit 0 when the entry is written or removed, even if it could not be enabled or
    stopped right now (no session bus: SSH, ``su``, CI); the warning says what to run."""
    import shlex

    from . import autostart, config

    host = autostart.Host.current(enable=not args.no_enable)
    if args.action == "install":
        path = (
            autostart.absolute(args.config, host) if args.config else autostart.default_config(host)
        )
        if not path.is_file():
            raise config.missing(
                path, explicit=bool(args.config) or bool(host.environ.get(config.CONFIG_ENV))
            )
        config.load(path)  # a configuration that fails now would fail at every login
        report = autostart.install(path, host=host, method=args.method)
        for entry in report.entries:
            _say(args, f"docinbox: autostart installed: {entry.describe()}")
            _say(args, f"  runs: docinbox run -c {shlex.quote(str(path))}")
    else:
        report = autostart.remove(host=host)
        for entry in report.entries:
            _say(args, f"docinbox: autostart removed: {entry.describe()}")
        if not report.entries:
            _say(args, "docinbox: no autostart entry to remove")
    for note in report.notes:
        _say(args, f"  {note}")
    for warning in report.warnings:
        print(f"docinbox: {warning}", file=sys.stderr)
    return EXIT_OK


def cmd_dashboard(args: argparse.Namespace) -> int:
    from .desk.server import dashboard_url

    settings, store = _open_readonly(args)
    try:
        holder = lock.running(settings.folders.state)
        url = dashboard_url(store, settings, holder.pid if holder else None)
    finally:
        if store is not None:
            store.close()
    if args.print_url:
        print(url)
        return EXIT_OK
    import webbrowser

    if not webbrowser.open(url):
        _error("no browser to open; open this address yourself:")
        print(url)
        return EXIT_FAILED
    _say(args, "docinbox: the review desk is open in your browser")
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    from . import export

    settings, store = _open_readonly(args)
    if store is None:
        raise DocinboxError("nothing to export yet (no state database)", hint="Run docinbox first.")
    try:
        selection = export.Selection(
            folder=args.folder,
            since=export.parse_since(args.since) if args.since else None,
            state=args.state,
        )
        made = export.gather(settings.folders.outbox, export.select(store, selection))
    finally:
        store.close()
    files = export.render(made, args.format)
    if args.output is None:
        if args.format == "xlsx":
            raise export.ExportError("xlsx needs a file: -o FILE.xlsx")
        sys.stdout.buffer.write(files[""])
        sys.stdout.flush()
        return EXIT_OK
    for path in export.write(files, args.output):
        _say(args, f"docinbox: wrote {path}")
    _say(args, f"  {len(made.documents)} document(s), {len(made.labels)} field column(s)")
    return EXIT_OK


def cmd_search(args: argparse.Namespace) -> int:
    from .desk import index
    from .docfile import display_name
    from .store import open_store

    settings = load(args.config)
    if not settings.folders.state.exists():
        raise DocinboxError("nothing to search yet (no state database)", hint="Run docinbox first.")
    store = open_store(settings.folders.state, create=False, readonly=not args.rebuild)
    try:
        if args.rebuild:
            n = index.rebuild(store, settings.folders.outbox)
            _say(args, f"docinbox: search index rebuilt: {n} result(s)")
            if not args.words:
                return EXIT_OK
        hits = store.search(" ".join(args.words)) if args.words else []
        for job_id, snippet in hits:
            job = store.get(job_id)
            text = snippet.replace("\x02", "[").replace("\x03", "]").replace("\n", " ")
            where = settings.folders.outbox / (job.result_dir or "")
            print(f"#{job_id:<5} {display_name(job.rel_path)} → {where}\n        {text}")
    finally:
        store.close()
    if not args.words:
        raise DocinboxError("say what to look for: docinbox search WORDS (or --rebuild)")
    return EXIT_OK if hits else EXIT_FAILED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
