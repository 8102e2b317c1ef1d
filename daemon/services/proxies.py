"""Proxy settings as docinbox reads them, from ``[network] proxy`` or the environment."""

from __future__ import annotations

import urllib.parse

from ..errors import ConfigError

#: what httpcore can speak to a proxy (socks5 through socksio)
PROXY_SCHEMES = ("http", "https", "socks5", "socks5h")


def check_proxy(value: str, where: str) -> str:
    """A proxy setting as docinbox uses it: "" (the environment's), "direct", or a proxy
    URL; ``host:port`` alone means ``http://host:port``, as curl and httpx read it.
    *where* names the setting: ``network.proxy``, or the variable (``HTTPS_PROXY``)."""
    value = value.strip()
    if value in ("", "direct"):
        return value
    url = value if "://" in value else f"http://{value}"
    try:
        parts = urllib.parse.urlsplit(url)
        _ = parts.port  # a port that is not a number raises here
    except ValueError as exc:
        raise ConfigError(
            f"{where}: {redact_url(value)!r} is not a proxy URL ({exc})", hint=_proxy_hint(where)
        ) from exc
    if parts.scheme.lower() not in PROXY_SCHEMES or not parts.hostname:
        raise ConfigError(
            f"{where}: {redact_url(value)!r} is not a proxy URL docinbox can use",
            hint=_proxy_hint(where),
        )
    return url


def _proxy_hint(where: str) -> str:
    form = "http://HOST:PORT (https://, socks5:// and socks5h:// work too)"
    if where.startswith("network."):
        return f'Write it as {form}, "direct" for no proxy, or "" for the environment\'s.'
    return f"Set {where} to {form}, or unset it; [network] proxy in the configuration wins over it."


def redact_url(url: str) -> str:
    """A proxy URL fit for a message: its password, if any, replaced."""
    head, sep, rest = url.rpartition("@")
    if not sep:
        return url
    scheme, colon, userinfo = head.rpartition("://")
    user = userinfo.split(":", 1)[0]
    return f"{scheme}{colon}{user}:***@{rest}" if ":" in userinfo else url
