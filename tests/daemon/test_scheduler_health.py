"""The scheduler and service health, alone: a real store in a temp folder, a fake clock,
stand-in services that only declare their slots and batch rules (no network)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytest

from daemon.clock import FakeClock
from daemon.config import Secret, ServiceSettings
from daemon.errors import CredentialsError, NetworkError, QuotaExceeded
from daemon.health import PAUSED, RETRYING, Health, probe_delay
from daemon.scheduler import Scheduler
from daemon.services.base import (
    BatchOutcome,
    Checkpoint,
    Normalized,
    Service,
    ServiceContext,
    SourceDocument,
)
from daemon.store import SQLiteStore, State, open_store


class Declared(Service):
    """Only what the scheduler reads: slots, batch limit and window, batch keys."""

    name: ClassVar[str] = "batchy"
    kinds = frozenset({"pdf", "link"})
    batch_limit = 3
    batch_window = 2.0

    async def submit(self, docs: Sequence[SourceDocument], checkpoint: Checkpoint) -> BatchOutcome:
        raise AssertionError("the scheduler never calls a service")

    def batch_key(self, kind: str, options: Mapping[str, Any]) -> str | None:
        return None if kind == "link" else str(options.get("lang", ""))

    def poll_key(self, remote: Mapping[str, Any]) -> str | None:
        return remote.get("batch")

    def normalize(self, raw_dir: Path, doc: SourceDocument) -> Normalized:
        raise AssertionError


def service(concurrency: int) -> Declared:
    settings = ServiceSettings(
        name="batchy",
        base_url="http://x",
        credential=Secret("k", "inline"),
        concurrency=concurrency,
    )
    return Declared(settings, ServiceContext())


@pytest.fixture
def store(tmp_path: Path) -> SQLiteStore:
    return open_store(tmp_path / "db.sqlite", clock=FakeClock())


def queue(store: SQLiteStore, n: int, *, kind: str = "pdf", lang: str = "") -> list[int]:
    shas = [f"{kind}{lang}{i}" for i in range(n)]
    ids = store.add_many(
        [
            {"rel_path": f"{sha}.pdf", "location": "/x", "sha256": sha, "size": 1, "mtime_ns": i}
            for i, sha in enumerate(shas)
        ]
    )
    store.set_inspected(
        [(i, sha, kind, 1, "batchy", {"lang": lang}) for i, sha in zip(ids, shas, strict=True) if i]
    )
    return [i for i in ids if i]


def test_a_partial_batch_waits_for_its_window_then_goes(store: SQLiteStore) -> None:
    clock = FakeClock()
    sched = Scheduler({"batchy": service(2)}, store, clock)
    queue(store, 2)
    assert sched.plan(blocked=set(), inflight=set(), stopping=False) == []
    assert sched.next_wake() == pytest.approx(2.0)
    clock.advance(2.0)
    (work,) = sched.plan(blocked=set(), inflight=set(), stopping=False)
    assert work.kind == "submit" and len(work.jobs) == 2


def test_full_batches_go_at_once_within_the_free_slots(store: SQLiteStore) -> None:
    sched = Scheduler({"batchy": service(2)}, store, FakeClock())
    queue(store, 7)  # two full batches of 3, one left over waiting for company
    planned = sched.plan(blocked=set(), inflight=set(), stopping=False)
    assert [len(w.jobs) for w in planned] == [3, 3]
    for work in planned:
        sched.started(work)
    assert sched.free("batchy") == 0
    assert sched.plan(blocked=set(), inflight=set(), stopping=False) == []


def test_links_go_alone_and_stopping_sends_partial_batches(store: SQLiteStore) -> None:
    sched = Scheduler({"batchy": service(4)}, store, FakeClock())
    queue(store, 1, kind="link")
    queue(store, 1, lang="es")
    planned = sched.plan(blocked=set(), inflight=set(), stopping=True)
    assert sorted(len(w.jobs) for w in planned) == [1, 1]


def test_blocked_services_and_jobs_in_flight_are_left_alone(store: SQLiteStore) -> None:
    sched = Scheduler({"batchy": service(4)}, store, FakeClock())
    ids = queue(store, 3)
    assert sched.plan(blocked={"batchy"}, inflight=set(), stopping=False) == []
    (work,) = sched.plan(blocked=set(), inflight={ids[0]}, stopping=True)
    assert ids[0] not in work.job_ids


def test_polls_group_by_remote_batch_and_wait_for_their_time(store: SQLiteStore) -> None:
    clock = FakeClock()
    sched = Scheduler({"batchy": service(4)}, store, clock)
    ids = queue(store, 3)
    for i in ids:
        store.transition(i, State.QUEUED, State.SUBMITTING)
        store.transition(
            i, State.SUBMITTING, State.SUBMITTED, not_before=clock.now() + 5, remote={"batch": "b1"}
        )
    assert sched.plan(blocked=set(), inflight=set(), stopping=False) == []
    assert sched.next_wake() == pytest.approx(5.0)
    clock.advance(5)
    (work,) = sched.plan(blocked=set(), inflight=set(), stopping=False)
    assert work.kind == "poll" and len(work.jobs) == 3  # one request for the remote batch


def test_an_outage_pauses_without_blame_then_a_repeat_offender_is_blamed(
    store: SQLiteStore,
) -> None:
    clock = FakeClock()
    health = Health(store, clock)
    (job_id,) = queue(store, 1)
    job = store.get(job_id)
    down = NetworkError("batchy: connection refused", service="batchy")
    assert not health.documents_fault(job, down)  # first time: the service's state
    health.pause("batchy", down)
    assert health.blocked()["batchy"]["condition"] == RETRYING
    clock.advance(100)  # however long: unreachable stays blocked until a probe succeeds
    assert "batchy" in health.blocked()
    assert health.due_probes() == {"batchy": 0}
    health.still_unreachable("batchy", 1, down)
    assert health.next_probe() == pytest.approx(clock.now() + probe_delay(2))
    health.resumed("batchy")  # a probe got an answer
    assert health.blocked() == {}
    # The same document meets the error again although the service answered since: its own.
    assert health.documents_fault(job, down)


def test_pauses_for_credentials_last_until_the_user_acts_quota_until_it_renews(
    store: SQLiteStore,
) -> None:
    clock = FakeClock()
    health = Health(store, clock)
    health.pause("batchy", CredentialsError("bad key", service="batchy"))
    clock.advance(10**6)
    assert health.blocked()["batchy"]["condition"] == PAUSED
    store.delete_meta("service:batchy")
    health.pause("batchy", QuotaExceeded("used up", service="batchy", retry_after=60))
    assert "batchy" in health.blocked()
    clock.advance(61)
    assert health.blocked() == {}
