"""Secrets echoed by a service never reach a log line, an error's message or an error
file: every form of every secret is masked (daemon/redact.py), by the log filter and by
every DocinboxError when it is made."""

from __future__ import annotations

import base64
import io
import logging
import sys
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from daemon import logs, redact
from daemon.errors import CredentialsError, DocinboxError, InternalError, RemoteRejected
from daemon.redact import MASK, Redactor

KEY = "nk-7Hq2+Lr/9x=Zt"  # has what URL-encoding and base64 turn into other characters


def basic(user: str, password: str = "", *, urlsafe: bool = False) -> str:
    encode = base64.urlsafe_b64encode if urlsafe else base64.b64encode
    return encode(f"{user}:{password}".encode()).decode()


def forms(key: str) -> dict[str, str]:
    """Every way a service may echo *key*, as it would appear in its error text."""
    return {
        "raw": key,
        "bearer": f"Bearer {key}",
        "basic": f"Basic {basic(key)}",
        "basic with a password": f"Basic {basic(key, 'hunter2!')}",
        "basic url-safe": basic(key, "x", urlsafe=True),
        "percent": urllib.parse.quote(key, safe=""),
        "percent, lowercase hex": urllib.parse.quote(key, safe="").replace("%2B", "%2b"),
        "percent, default safe": urllib.parse.quote(key),
        "form-encoded": urllib.parse.urlencode({"api_key": key}),
        "json slash": key.replace("/", "\\/"),
    }


@pytest.fixture
def nothing_registered() -> Iterator[None]:
    with redact.only([]):
        yield


@pytest.mark.parametrize("form", list(forms(KEY)))
def test_every_form_is_masked_inside_longer_text(form: str) -> None:
    echoed = forms(KEY)[form]
    text = f'{{"error": "invalid credentials: {echoed}", "request_id": "8d1c"}}'
    clean = Redactor([KEY]).scrub(text)
    assert MASK in clean
    assert echoed not in clean
    assert clean.startswith('{"error": "invalid credentials: ')
    assert clean.endswith('", "request_id": "8d1c"}')


@pytest.mark.parametrize("length", range(4, 13))
@pytest.mark.parametrize("password", ["", "p", "pw", "pwd", "a longer password"])
def test_basic_credentials_are_masked_whole_at_every_alignment(length: int, password: str) -> None:
    key = "kX9-qZ7_mW3vB8yT"[:length]
    token = basic(key, password)
    clean = Redactor([key]).scrub(f"Authorization: Basic {token}.")
    assert clean == f"Authorization: Basic {MASK}."


def test_other_base64_and_near_misses_survive() -> None:
    r = Redactor([KEY])
    text = f"Basic {basic('someone-else')} {KEY[:-1]} {KEY.upper()} nk-7Hq2"
    assert r.scrub(text) == text


def test_short_and_blank_secrets_are_not_scrubbed() -> None:
    r = Redactor(["abc", "    ", "", None])
    assert not r
    assert r.scrub("abc is a word, and so on    ") == "abc is a word, and so on    "
    assert Redactor(["abcd"]).scrub("abcd abc") == f"{MASK} abc"


def test_overlapping_and_nested_secrets_are_masked_whole() -> None:
    r = Redactor(["token-1234", "1234-extra", "token-1234-long"])
    assert r.scrub("x token-1234-extra y") == f"x {MASK} y"
    assert r.scrub("token-1234-long") == MASK
    assert r.secrets[0] == "token-1234-long"  # longest first


def test_many_short_messages_cost_one_scan_each() -> None:
    r = Redactor([KEY, "mock-mineru-token-0123456789", "docparse-" + "x" * 40])
    messages = [f"nanonets refused the document: HTTP 400 '{{\"id\": {i}}}'" for i in range(20000)]
    start = time.perf_counter()
    for m in messages:
        r.scrub(m)
    # ~5 µs each on this project's machine; the bound only catches a pathological regex
    assert time.perf_counter() - start < 2.0


# --- the process-wide redactor: errors and logs ---------------------------------------------


@pytest.mark.usefixtures("nothing_registered")
def test_errors_are_scrubbed_when_made() -> None:
    redact.register([KEY])
    for form, echoed in forms(KEY).items():
        err = RemoteRejected(f"nanonets refused the document: HTTP 400 {echoed!r}", service="n")
        assert echoed not in err.message, form
        assert echoed not in str(err), form
        assert echoed not in str(err.to_dict()), form
    hinted = CredentialsError("bad key", hint=f"The key {KEY} was refused.")
    assert KEY not in hinted.hint
    assert KEY not in InternalError(f"boom: {ValueError(KEY)}").message
    assert DocinboxError("nothing secret here").message == "nothing secret here"


@pytest.mark.usefixtures("nothing_registered")
def test_register_adds_and_never_forgets() -> None:
    redact.register(["first-secret"])
    redact.register(["second-secret", None, "ab"])
    assert set(redact.active().secrets) == {"first-secret", "second-secret"}
    assert redact.scrub("first-secret second-secret ab") == f"{MASK} {MASK} ab"


@pytest.mark.usefixtures("nothing_registered")
def test_clip_scrubs_before_it_cuts() -> None:
    redact.register([KEY])
    text = repr({"detail": "x" * 100 + KEY})
    assert KEY[:8] in text[:120]  # what a plain cut would have shown
    assert redact.clip(text, 120) == text[: text.index(KEY)] + MASK + "'}"


def test_only_restores_the_earlier_redactor() -> None:
    before = redact.active()
    with redact.only(["temporary-secret"]):
        assert redact.scrub("temporary-secret") == MASK
    assert redact.active() is before


def _record(logger: logging.Logger, msg: str, *args: object, **kwargs: Any) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(logs.RedactSecrets())
    logger.addHandler(handler)
    try:
        logger.error(msg, *args, **kwargs)
    finally:
        logger.removeHandler(handler)
    return stream.getvalue()


@pytest.mark.usefixtures("nothing_registered")
def test_log_records_arguments_and_tracebacks_are_scrubbed() -> None:
    redact.register([KEY])
    logger = logging.getLogger("docinbox.test_redact")
    logger.propagate = False
    for echoed in forms(KEY).values():
        assert echoed not in _record(logger, "service said %s", echoed)
    try:
        raise RuntimeError(f"upstream echoed {forms(KEY)['basic']}")
    except RuntimeError:
        text = _record(logger, "while polling", exc_info=sys.exc_info())
    assert "Traceback" in text
    assert "RuntimeError: upstream echoed Basic ****" in text
    assert basic(KEY) not in text


@pytest.mark.usefixtures("nothing_registered")
def test_log_setup_registers_its_secrets_for_the_whole_process(tmp_path: Path) -> None:
    root = logging.getLogger()
    level = root.level
    try:
        logs.setup("info", tmp_path / "docinbox.log", [KEY])
        logging.getLogger("docinbox").error("echoed: %s / %s", basic(KEY), f"Bearer {KEY}")
        assert KEY not in RemoteRejected(f"echoed {KEY}").message  # the same redactor
    finally:
        for handler in [h for h in root.handlers if getattr(h, "_docinbox", False)]:
            root.removeHandler(handler)
            handler.close()
        root.setLevel(level)
    text = (tmp_path / "docinbox.log").read_text("utf-8")
    assert f"echoed: {MASK} / Bearer {MASK}" in text
    assert basic(KEY) not in text
