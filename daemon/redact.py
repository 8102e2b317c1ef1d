"""Secrets out of every text docinbox stores or shows.

A service that echoes the request back in an error ("invalid key sk-..."; the
``Authorization`` header it got) hands the key to whatever records that text: the log,
the state database, ``failed/<name>.error.json``, ``docinbox status``.  So every such text
goes through :func:`scrub` (log records through :class:`daemon.logs.RedactSecrets`, every
:class:`~daemon.errors.DocinboxError` message when the error is made), which replaces each
form of each configured secret by ``****``:

- the value itself, anywhere in a longer text (``Bearer <key>``, ``?key=<key>&...``);
- the value URL-encoded, in full or in part: any character as itself or as ``%XX``
  (either case of hex digits; UTF-8 for non-ASCII), a space also as ``+``, a ``/`` also
  as JSON's ``\\/``;
- HTTP Basic credentials with the value as the user: the base64 of ``<key>:`` followed
  by anything (the password, Nanonets' empty one), in the standard and the URL-safe
  alphabet — the whole token is masked.

Secrets shorter than :data:`MIN_LENGTH` (4) characters are not scrubbed: masking every
``abc`` in every message would destroy ordinary text, and such a key protects nothing.

The daemon and the CLI :func:`register` the configuration's secrets once at start; the
process-wide redactor then applies everywhere, also to errors made deep inside a service.
One compiled alternation serves all the forms of all the secrets, so a short message
costs one regex scan.
"""

from __future__ import annotations

import base64
import contextlib
import re
import threading
from collections.abc import Iterable, Iterator

#: Shorter secrets are not scrubbed (see the module's docstring).
MIN_LENGTH = 4
MASK = "****"

_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_B64_URLSAFE = _B64[:62] + "-_"


def _percent(c: str) -> str:
    """*c* percent-encoded (its UTF-8 bytes), hex digits in either case."""
    return "".join(
        "%" + "".join(f"[{h}{h.lower()}]" if h.isalpha() else h for h in f"{byte:02X}")
        for byte in c.encode("utf-8")
    )


def _char(c: str) -> str:
    """One character of a secret as it may appear in text from outside."""
    forms = [re.escape(c), _percent(c)]
    if c == " ":
        forms.append(r"\+")
    elif c == "/":
        forms.append(r"\\/")
    return "(?:" + "|".join(forms) + ")"


def _plain(secret: str) -> str:
    """The value, raw or URL-encoded in whole or part."""
    return "".join(_char(c) for c in secret)


def _basic(secret: str, alphabet: str) -> str:
    """The base64 of ``<secret>:`` followed by anything, as one token.

    The groups of three bytes that lie wholly within ``<secret>:`` encode to fixed
    characters; the one or two bytes left over fix one or two more characters and narrow
    the next to the few whose leading bits they give.  Then the rest of the token."""
    data = (secret + ":").encode("utf-8")
    whole = len(data) // 3 * 3
    table = bytes.maketrans(_B64.encode(), alphabet.encode())
    fixed = base64.b64encode(data[:whole]).translate(table).decode()
    rest = data[whole:]
    if len(rest) == 1:
        b0 = rest[0]
        fixed += alphabet[b0 >> 2]
        choices = {alphabet[((b0 & 3) << 4) | low] for low in range(16)}
    elif len(rest) == 2:
        b0, b1 = rest
        fixed += alphabet[b0 >> 2] + alphabet[((b0 & 3) << 4) | (b1 >> 4)]
        choices = {alphabet[((b1 & 15) << 2) | low] for low in range(4)}
    else:
        choices = set()
    pattern = re.escape(fixed)
    if choices:
        pattern += "[" + "".join(re.escape(c) for c in sorted(choices)) + "]"
    body = re.escape(alphabet[-2]) + re.escape(alphabet[-1])
    return pattern + f"[A-Za-z0-9{body}]*=*"


class Redactor:
    """Replaces every form of the given secrets by ``****`` (see the module's docstring)."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        kept = {s for s in secrets if s and len(s) >= MIN_LENGTH and not s.isspace()}
        #: The secrets it scrubs, longest first.
        self.secrets: tuple[str, ...] = tuple(sorted(kept, key=lambda s: (-len(s), s)))
        forms: list[str] = []
        for secret in self.secrets:  # longest first: a key that contains another wins
            forms.append(_plain(secret))
            forms += dict.fromkeys(_basic(secret, a) for a in (_B64, _B64_URLSAFE))
        # A lookahead finds a match at every position, overlapping ones included, so two
        # secrets that overlap in a text are both masked whole.
        self._pattern = re.compile("(?=(" + "|".join(forms) + "))") if forms else None

    def __bool__(self) -> bool:
        return self._pattern is not None

    def scrub(self, text: str) -> str:
        """*text* with every form of every secret replaced by ``****``."""
        if self._pattern is None or not text:
            return text
        spans: list[list[int]] = []
        for match in self._pattern.finditer(text):
            start, end = match.span(1)
            if end == start:
                continue
            if spans and start <= spans[-1][1]:
                spans[-1][1] = max(spans[-1][1], end)
            else:
                spans.append([start, end])
        if not spans:
            return text
        out: list[str] = []
        pos = 0
        for start, end in spans:
            out += (text[pos:start], MASK)
            pos = end
        out.append(text[pos:])
        return "".join(out)


_lock = threading.Lock()
_active = Redactor()


def register(secrets: Iterable[str | None]) -> Redactor:
    """Add *secrets* to the process-wide redactor (none is ever forgotten): the daemon and
    the CLI call this with the configuration's secrets once at start."""
    global _active
    with _lock:
        _active = Redactor([*_active.secrets, *secrets])
        return _active


def active() -> Redactor:
    return _active


def scrub(text: str) -> str:
    """*text* through the process-wide redactor."""
    return _active.scrub(text)


def clip(text: str, limit: int) -> str:
    """*text* scrubbed, then cut to *limit* characters — in that order: a cut through a
    secret leaves a piece of it that no scrubber recognises any more."""
    return _active.scrub(text)[:limit]


@contextlib.contextmanager
def only(secrets: Iterable[str | None]) -> Iterator[Redactor]:
    """The process-wide redactor knows exactly *secrets* inside; the earlier one after
    (for tests, which must not leave secrets behind for the next)."""
    global _active
    with _lock:
        before, _active = _active, Redactor(secrets)
    try:
        yield _active
    finally:
        with _lock:
            _active = before
