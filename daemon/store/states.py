"""Job states and the only transitions allowed between them.

::

    queued ──► submitting ──► submitted ──► received ──► done
      ▲  │          │  │            │  ▲        │
      │  │          │  └────────────┼──┼────────┤ (synchronous services answer at once)
      │  │          │               │  └────────┤ (the stored answer is unreadable:
      │  │          │               │           │  fetch it again, or submit again)
      │  └──────────┴───────────────┴───────────┴──► failing ──► failed
      └─────────── retry / resubmit ◄──────────────────────────────┘

- ``queued``: stable in the inbox, waiting for a worker (``not_before`` holds back retries).
- ``submitting``: intent persisted; the request may or may not have reached the service.
- ``submitted``: the service accepted it; ``remote`` holds its ids (poll, don't resubmit).
- ``received``: the service's raw output is stored durably under the state folder.
- ``done``: the outbox folder is written and the original archived (or deleted).
- ``failing``: the document cannot be processed (``error``, ``message`` say why); its
  original is on its way to ``failed/`` (waiting when that disk says no).
- ``failed``: the original sits in ``failed/`` beside its ``.error.json``.
"""

from __future__ import annotations

from enum import Enum


class State(str, Enum):
    QUEUED = "queued"
    SUBMITTING = "submitting"
    SUBMITTED = "submitted"
    RECEIVED = "received"
    DONE = "done"
    FAILING = "failing"
    FAILED = "failed"

    def __str__(self) -> str:
        return self.value


TERMINAL = frozenset({State.DONE, State.FAILED})
ACTIVE = frozenset(State) - TERMINAL

TRANSITIONS: dict[State, frozenset[State]] = {
    State.QUEUED: frozenset({State.SUBMITTING, State.FAILING}),
    # back to queued: the request provably did not land, or recovery after a crash
    # for a service that cannot have kept it
    State.SUBMITTING: frozenset({State.SUBMITTED, State.RECEIVED, State.QUEUED, State.FAILING}),
    State.SUBMITTED: frozenset({State.RECEIVED, State.QUEUED, State.FAILING}),
    # back: the stored answer cannot be read; fetch it again, or submit again
    State.RECEIVED: frozenset({State.DONE, State.FAILING, State.SUBMITTED, State.QUEUED}),
    State.DONE: frozenset(),
    State.FAILING: frozenset({State.FAILED}),
    State.FAILED: frozenset({State.QUEUED}),
}


def allowed(src: State, dst: State) -> bool:
    """Staying in a non-terminal state (recording ids or a retry time) is always allowed."""
    return dst in TRANSITIONS[src] or (src == dst and src not in TERMINAL)
