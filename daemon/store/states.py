"""Job states and the only transitions allowed between them.

::

    queued ──► submitting ──► submitted ──► received ──► done
      ▲  │          │  │            │  ▲        │
      │  │          │  └────────────┼──┼────────┤ (synchronous services answer at once)
      │  │          │               │  └────────┤ (the stored answer is unreadable:
      │  │          │               │           │  fetch it again, or submit again)
      │  └──────────┴───────────────┴───────────┴──► failing ──► failed
      └─────────── retry / resubmit ◄──────────────────────────────┘

A document over its service's limits waits for its parts (jobs of their own, the
chart above, each with ``parent_id`` set)::

    queued ──► split ──► received ──► done
                 │  ▲        │
                 │  └────────┤ (a part's answer must be fetched again)
                 └───────────┴──► failing ──► failed ──► split (retry: its failed parts;
                                                          received when none is left)

- ``queued``: stable in the inbox, waiting for a worker (``not_before`` holds back retries).
- ``submitting``: intent persisted; the request may or may not have reached the service.
- ``submitted``: the service accepted it; ``remote`` holds its ids (poll, don't resubmit).
- ``received``: the service's raw output is stored durably under the state folder.
- ``done``: the outbox folder is written and the original archived (or deleted).
- ``failing``: the document cannot be processed (``error``, ``message`` say why); its
  original is on its way to ``failed/`` (waiting when that disk says no).
- ``failed``: the original sits in ``failed/`` beside its ``.error.json``.
- ``split``: a document over its service's limits, split into parts (jobs whose
  ``parent_id`` is this one); it waits here until every part is ``received`` (then
  ``received``: the parts are merged into one result) or, a part having failed, every
  other part has settled (then ``failing``).  A part never moves files to ``failed/``:
  its document does.
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
    SPLIT = "split"

    def __str__(self) -> str:
        return self.value


TERMINAL = frozenset({State.DONE, State.FAILED})
ACTIVE = frozenset(State) - TERMINAL

TRANSITIONS: dict[State, frozenset[State]] = {
    State.QUEUED: frozenset({State.SUBMITTING, State.FAILING, State.SPLIT}),
    # back to queued: the request provably did not land, or recovery after a crash
    # for a service that cannot have kept it
    State.SUBMITTING: frozenset({State.SUBMITTED, State.RECEIVED, State.QUEUED, State.FAILING}),
    State.SUBMITTED: frozenset({State.RECEIVED, State.QUEUED, State.FAILING}),
    # back: the stored answer cannot be read; fetch it again, or submit again
    # (to split: a document's part must be fetched again before the merge)
    State.RECEIVED: frozenset(
        {State.DONE, State.FAILING, State.SUBMITTED, State.QUEUED, State.SPLIT}
    ),
    State.DONE: frozenset(),
    State.FAILING: frozenset({State.FAILED}),
    # (to split, or received when no part is left to redo: retrying a split document)
    State.FAILED: frozenset({State.QUEUED, State.SPLIT, State.RECEIVED}),
    State.SPLIT: frozenset({State.RECEIVED, State.FAILING}),
}


def allowed(src: State, dst: State) -> bool:
    """Staying in a non-terminal state (recording ids or a retry time) is always allowed."""
    return dst in TRANSITIONS[src] or (src == dst and src not in TERMINAL)
