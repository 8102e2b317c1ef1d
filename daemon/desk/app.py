"""The desk's Starlette application: the page, the JSON API under ``/api/``, and the
server-sent events.  Handlers run on the daemon's own loop (daemon/servers/serve.py) and
read the store directly; blocking reads of result folders go to worker threads.

Everything a request carries is untrusted: ids are integers or a 404, bodies are
checked (:func:`daemon.review.check_corrections`), query values are length-capped, and
files are only ever found through the store (a URL never names a path).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from .. import actions, export, review
from ..control import StatusSnapshot
from ..errors import DocinboxError, StaleTransition
from ..pipeline.runtime import Runtime
from ..store import Job, State
from . import views
from .auth import Guard, Keys
from .pages import Pages

#: Seconds between keep-alive comments on an idle event stream.
HEARTBEAT = 15.0
MAX_LIMIT = 1000
#: A filtered list looks at this many of the newest documents at most.
MAX_SCAN = 20000
MAX_BODY = 256 * 1024
STATIC = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/static/desk.js": ("desk.js", "text/javascript; charset=utf-8"),
    "/static/desk.css": ("desk.css", "text/css; charset=utf-8"),
}


class BadRequest(Exception):
    """A request the desk refuses (400/404/409), with what to tell the page."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Desk:
    """What the handlers use: the running daemon's parts."""

    rt: Runtime
    snapshot: Callable[[], StatusSnapshot]
    subscribe: Callable[[Callable[[], None]], Callable[[], None]]
    approvals_wake: Callable[[], None]
    pages: Pages
    keys: Keys
    closing: asyncio.Event

    @property
    def store(self) -> Any:
        return self.rt.store

    @property
    def outbox(self) -> Path:
        return self.rt.folders.outbox

    def job(self, request: Request) -> Job:
        text = str(request.path_params["job_id"])
        try:
            if not text.isdigit() or len(text) > 18:  # SQLite's integers end at 2**63
                raise KeyError(text)
            return self.store.get(int(text))
        except KeyError as exc:
            raise BadRequest("no such document", 404) from exc

    def poke(self) -> None:
        """Something changed: every loop looks again, the status is published."""
        self.rt.signals.all()


def _param(request: Request, name: str, limit: int = 200) -> str | None:
    value = request.query_params.get(name)
    return value[:limit] if value else None


def _limit(request: Request, default: int = 200) -> int:
    try:
        return max(1, min(MAX_LIMIT, int(request.query_params.get("limit", default))))
    except ValueError as exc:
        raise BadRequest("limit: expected a number") from exc


def _since(request: Request) -> float | None:
    text = _param(request, "since", 40)
    if not text:
        return None
    try:
        return export.parse_since(text)
    except DocinboxError as exc:
        raise BadRequest("since: expected a date such as 2025-12-23") from exc


async def _json_body(request: Request) -> Any:
    body = await request.body()
    if len(body) > MAX_BODY:
        raise BadRequest("request body too large", 413)
    try:
        return json.loads(body or b"null")
    except ValueError as exc:
        raise BadRequest("the body is not JSON") from exc


class Handlers:
    def __init__(self, desk: Desk) -> None:
        self.desk = desk

    # --- reading ---------------------------------------------------------------------------

    async def session(self, request: Request) -> Response:
        from .. import __version__

        return JSONResponse({"csrf": self.desk.keys.csrf, "version": __version__})

    async def status(self, request: Request) -> Response:
        return JSONResponse(self._status())

    def _status(self) -> dict[str, Any]:
        return views.snapshot(
            self.desk.snapshot(),
            under_review=self._under_review(),
            retry=self.desk.rt.settings.retry,
        )

    def _under_review(self) -> int:
        store = self.desk.store
        pending = store.under_review()
        approved = {i for i, r in store.reviews(pending).items() if r.state == "approved"}
        return len([i for i in pending if i not in approved])

    async def documents(self, request: Request) -> Response:
        limit = _limit(request)
        state, service = _param(request, "state", 20), _param(request, "service", 50)
        folder, since = _param(request, "folder"), _since(request)
        query, review_state = _param(request, "q"), _param(request, "review", 20)
        if state and state not in {str(s) for s in State}:
            raise BadRequest(f"state: expected one of {', '.join(str(s) for s in State)}")
        snippets: dict[int, str] = {}
        store = self.desk.store
        plain = not (query or service or folder or since or review_state)
        if query:
            hits = store.search(query, limit=MAX_LIMIT)
            snippets = dict(hits)
            jobs = [j for j in (self._get(i) for i, _ in hits) if j is not None]
            if request.url.path == "/api/documents":  # the list: newest first; search: best
                jobs.sort(key=lambda j: (j.updated_at, j.id), reverse=True)
        else:  # without filters only the page shown is read
            jobs = store.jobs(
                newest_first=True,
                limit=limit + 1 if plain else MAX_SCAN,
                states=[State(state)] if state else None,
            )
        jobs = [
            j
            for j in jobs
            if views.wanted(j, state=state, service=service, folder=folder, since=since)
        ]
        if review_state:
            jobs = self._in_review(jobs, review_state)
        rows = self._rows(jobs[:limit])
        for r in rows:
            if r["id"] in snippets:
                r["snippet"] = snippets[r["id"]]
        total = self._total(state) if plain and len(jobs) > limit else len(jobs)
        return JSONResponse({"documents": rows, "total": total})

    def _total(self, state: str | None) -> int:
        """How many documents there are (in *state*), dismissed failures included."""
        store = self.desk.store
        counts = store.counts()
        n = counts.get(state, 0) if state else sum(counts.values())
        return n + (len(store.dismissed_ids()) if state in (None, "failed") else 0)

    def _in_review(self, jobs: list[Job], review_state: str) -> list[Job]:
        ids = [j.id for j in jobs]
        results, reviews = self.desk.store.results(ids), self.desk.store.reviews(ids)

        def state_of(job_id: int) -> str:
            row = results.get(job_id)
            return _review_state(
                {
                    "review": dict(row.review) if row else None,
                    "approval": reviews[job_id].as_json() if job_id in reviews else None,
                }
            )

        return [j for j in jobs if state_of(j.id) == review_state]

    def _get(self, job_id: int) -> Job | None:
        try:
            return self.desk.store.get(job_id)
        except KeyError:
            return None

    def _rows(self, jobs: list[Job]) -> list[dict[str, Any]]:
        store = self.desk.store
        ids = [j.id for j in jobs]
        results, reviews = store.results(ids), store.reviews(ids)
        dismissed = store.dismissed_ids()
        return [
            views.document(
                j, self.desk.outbox, results.get(j.id), reviews.get(j.id), j.id in dismissed
            )
            for j in jobs
        ]

    async def document(self, request: Request) -> Response:
        job = self.desk.job(request)
        (row,) = self._rows([job])
        result, markdown = None, None
        if job.state is State.DONE and job.result_dir:
            try:
                folder = review.result_folder(self.desk.outbox, job.result_dir)
                result, markdown = await asyncio.to_thread(review.read_result, folder)
            except (OSError, ValueError):
                row["result_missing"] = True
        history = self.desk.store.history(job.id)
        body = views.detail(job, self.desk.rt.settings, row, result, markdown, history)
        body["page_images"] = self.desk.pages.original(job) is not None
        return JSONResponse(body)

    async def page(self, request: Request) -> Response:
        job = self.desk.job(request)
        try:
            number = int(request.path_params["page"])
        except ValueError as exc:
            raise BadRequest("no such page", 404) from exc
        data = await self.desk.pages.png(job, number - 1)
        if data is None:
            raise BadRequest("no picture of this page", 404)
        return Response(data, media_type="image/png")

    async def search(self, request: Request) -> Response:
        query = _param(request, "q")
        if not query:
            raise BadRequest("q: say what to look for")
        return await self.documents(request)

    async def export(self, request: Request) -> Response:
        fmt = _param(request, "format", 10) or "csv"
        selection = export.Selection(
            folder=_param(request, "folder"),
            since=_since(request),
            state=_param(request, "state", 20) or "done",
        )
        try:
            jobs = export.select(self.desk.store, selection)
            made = await asyncio.to_thread(export.gather, self.desk.outbox, jobs)
            rendered = export.render(made, fmt)
        except export.ExportError as exc:
            raise BadRequest(exc.message) from exc
        return _download(rendered, fmt, request.query_params.get("part") == "tables")

    # --- changing --------------------------------------------------------------------------

    async def correct(self, request: Request) -> Response:
        try:
            corrections = review.check_corrections(await _json_body(request))
        except ValueError as exc:
            raise BadRequest(str(exc)) from exc
        job = self._reviewable(request)
        try:
            saved = self.desk.store.save_corrections(job.id, corrections)
        except StaleTransition as exc:
            raise BadRequest("its approval is under way; wait for it", 409) from exc
        self.desk.rt.changed()
        return JSONResponse({"approval": saved.as_json()})

    async def approve(self, request: Request) -> Response:
        job = self._reviewable(request)
        try:
            requested = self.desk.store.request_approval(job.id, review.BY_DASHBOARD)
        except StaleTransition as exc:
            raise BadRequest("its approval is already under way", 409) from exc
        self.desk.approvals_wake()
        self.desk.rt.changed()
        return JSONResponse({"approval": requested.as_json()}, status_code=202)

    def _reviewable(self, request: Request) -> Job:
        job = self.desk.job(request)
        if job.state is not State.DONE or not job.result_dir:
            raise BadRequest("only a document with a written result can be reviewed", 409)
        return job

    async def retry(self, request: Request) -> Response:
        job = self.desk.job(request)
        moved = actions.retry(self.desk.store, [job.id])
        if not moved:
            raise BadRequest("only a failed document can be retried", 409)
        self.desk.poke()
        return JSONResponse({"retried": [j.id for j in moved]})

    async def dismiss(self, request: Request) -> Response:
        job = self.desk.job(request)
        done = actions.dismiss(self.desk.store, [job.id])
        if not done:
            raise BadRequest("only a failed document can be dismissed", 409)
        self.desk.poke()
        return JSONResponse({"dismissed": done})

    # --- the page and the events -----------------------------------------------------------

    async def static(self, request: Request) -> Response:
        name, media = STATIC[request.url.path]
        text = files(__package__ or "daemon.desk").joinpath("static").joinpath(name).read_bytes()
        return Response(text, media_type=media)

    async def events(self, request: Request) -> Response:
        return StreamingResponse(
            self._stream(),
            media_type="text/event-stream",
            headers={"X-Accel-Buffering": "no"},
        )

    async def _stream(self) -> AsyncIterator[str]:
        """A ``status`` event at once and after every change; a comment every
        HEARTBEAT seconds; the stream ends when the desk stops."""
        changed = asyncio.Event()
        loop = asyncio.get_running_loop()

        def wake() -> None:
            loop.call_soon_threadsafe(changed.set)

        unsubscribe = self.desk.subscribe(wake)
        closing = self.desk.closing
        try:
            while not closing.is_set():
                changed.clear()
                yield f"event: status\ndata: {json.dumps(self._status())}\n\n"
                waits = {
                    asyncio.ensure_future(changed.wait()),
                    asyncio.ensure_future(closing.wait()),
                }
                done, pending = await asyncio.wait(
                    waits, timeout=HEARTBEAT, return_when="FIRST_COMPLETED"
                )
                for task in pending:
                    task.cancel()
                if not done:
                    yield ": keep-alive\n\n"
        finally:
            unsubscribe()


def _review_state(row: Mapping[str, Any]) -> str:
    """A listed document's review, as a person sees it: the approval's state once one
    was asked for, else the result's (pending, none)."""
    approval = row.get("approval") or {}
    if approval.get("state") in ("approving", "approved", "failed"):
        return str(approval["state"])
    return str((row.get("review") or {}).get("state") or "none")


def _download(rendered: Mapping[str, bytes], fmt: str, tables: bool) -> Response:
    media = {
        "csv": "text/csv; charset=utf-8",
        "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "jsonl": "application/x-ndjson; charset=utf-8",
    }[fmt]
    suffix = "-tables" if tables and "-tables" in rendered else ""
    name = f"docinbox-export{suffix}.{fmt}"
    return Response(
        rendered[suffix],
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


async def _refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, BadRequest)
    return JSONResponse({"error": str(exc)}, status_code=exc.status)


def build(desk: Desk) -> Guard:
    """The application, behind its guard (daemon/desk/auth.py)."""
    h = Handlers(desk)
    doc = "/api/documents/{job_id}"
    routes = [
        *(Route(path, h.static, methods=["GET"]) for path in STATIC),
        Route("/api/session", h.session, methods=["GET"]),
        Route("/api/status", h.status, methods=["GET"]),
        Route("/api/events", h.events, methods=["GET"]),
        Route("/api/documents", h.documents, methods=["GET"]),
        Route(doc, h.document, methods=["GET"]),
        Route(doc + "/pages/{page}.png", h.page, methods=["GET"]),
        Route(doc + "/fields", h.correct, methods=["PATCH"]),
        Route(doc + "/approve", h.approve, methods=["POST"]),
        Route(doc + "/retry", h.retry, methods=["POST"]),
        Route(doc + "/dismiss", h.dismiss, methods=["POST"]),
        Route("/api/search", h.search, methods=["GET"]),
        Route("/api/export", h.export, methods=["GET"]),
    ]
    app = Starlette(routes=routes, exception_handlers={BadRequest: _refused})
    return Guard(app, desk.keys)
