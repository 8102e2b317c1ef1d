"""``docinbox-mock`` / ``python -m mockserver``: the mock in the foreground."""

from __future__ import annotations

import argparse
import sys

from .defaults import DEFAULT_HOST, DEFAULT_PORT
from .server import MockServer, PortInUseError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="docinbox-mock",
        description="A faithful mock of Nanonets v2, MinerU v4 (+ OSS uploads) and docparse v1.",
    )
    parser.add_argument("--host", default=DEFAULT_HOST, help="address to listen on")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="0 picks a free port")
    parser.add_argument(
        "--speed", type=float, default=1.0, help="mock seconds per real second (processing times)"
    )
    parser.add_argument("--log-level", default="warning", help="uvicorn log level")
    parser.add_argument("--access-log", action="store_true", help="log every request")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGINT/SIGTERM; prints one ``docinbox-mock listening on URL`` line when ready.

    Exit status: 0 after a clean stop, 1 when the port is taken, 2 on bad arguments.
    """
    args = build_parser().parse_args(argv)
    if args.speed <= 0:
        print("docinbox-mock: --speed must be positive", file=sys.stderr)
        return 2
    mock = MockServer(
        args.host, args.port, speed=args.speed, log_level=args.log_level,
        access_log=args.access_log,
    )  # fmt: skip
    try:
        mock.serve_forever(lambda: print(f"docinbox-mock listening on {mock.url}", flush=True))
    except PortInUseError as exc:
        print(f"docinbox-mock: {exc.strerror}", file=sys.stderr)
        return 1
    finally:
        mock.ctx.close()
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
