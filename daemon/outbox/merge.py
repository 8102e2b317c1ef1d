"""One result folder for a document parsed in parts, as if it had been parsed whole.

(Worker thread, from the finish step.)  Each part's raw output is moved from its work
folder into the document's staging ``raw/part-001/``, ``raw/part-002/``, … — a move,
so a crash half-way finds each part in one place or the other, and a part fetched again
replaces its older copy — then normalized by its service as any result is, and:

- ``document.md``: the parts' Markdown in page order, links into a part's output
  rebased onto its folder (``raw/images/x.jpg`` → ``raw/part-002/images/x.jpg``: two
  parts' images never collide); written to a file part by part, so the daemon holds one
  part's text at a time whatever the document's length;
- ``fields`` and ``tables``: in page order, ``page`` in the original's numbering (a
  part written as a file of its own numbers from 0: its first page is added);
- the service's own merged files beside the parts' folders (``Service.merged_raw``:
  MinerU's content list with ``page_idx`` renumbered);
- ``source.parts``: each part's pages (1-based, inclusive), remote ids and folder.

A part whose stored answer is missing or unreadable raises :class:`PartOutputLost`:
that part is fetched (or sent) again, the others keep theirs.
"""

from __future__ import annotations

import os
import re
import shutil
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import DocinboxError, RawOutputLost
from ..services.base import Normalized, PartOutput, Service, SourceDocument
from ..store import Job
from .writer import Folder

#: What an unreadable stored answer looks like, as opposed to a bug in normalizing it.
UNREADABLE = (OSError, ValueError, UnicodeDecodeError, zipfile.BadZipFile, KeyError)
RAW = "raw"
#: The merged Markdown, written part by part beside the staged ``raw/`` (one part's text
#: in memory at a time), moved into the result folder as ``document.md``.
MERGED_MARKDOWN = "merged.md"

# ![alt](target "title") and <img src="target">, as in the services' Markdown.
_MD_LINK = re.compile(r"(!?\[[^\]]*\]\(\s*<?)(raw/)")
_HTML_SRC = re.compile(r"""(<img\b[^>]*?\bsrc\s*=\s*["'])(raw/)""", re.IGNORECASE)


class PartOutputLost(RawOutputLost):
    """Merging met a part whose stored answer cannot be read: fetch that part again."""

    def __init__(self, message: str, *, part_id: int, service: str, resubmit: bool) -> None:
        super().__init__(message, service=service, resubmit=resubmit)
        self.part_id = part_id

    def for_part(self) -> RawOutputLost:
        """The error as the part meets it."""
        return RawOutputLost(self.message, service=self.service, resubmit=self.resubmit)


@dataclass(frozen=True)
class Part:
    """One part as the merge needs it: its job, what its service was given, where its
    answer was stored, and whether the service can be asked for it again."""

    job: Job
    doc: SourceDocument
    stored: Path
    can_refetch: bool

    @property
    def folder(self) -> str:
        return f"part-{self.job.part or 0:03d}"

    @property
    def offset(self) -> int:
        """Added to a page of its result: 0 when it was the whole file under a page range
        (its pages are the document's), else the pages before it."""
        whole = self.doc.pages is not None and self.doc.pages > self.job.page_count
        return 0 if whole else (self.job.first_page or 1) - 1


def folder(
    name: str,
    parent: Job,
    source: Mapping[str, Any],
    service: Service,
    parts: Sequence[Part],
    stage: Path,
) -> Folder:
    """The merged result folder of *parent*, its raw output staged in *stage*."""
    outputs = gather(stage, parts, parent)
    markdown = stage.parent / MERGED_MARKDOWN
    fields: list[Mapping[str, Any]] = []
    tables: list[Mapping[str, Any]] = []
    listed: list[dict[str, Any]] = []
    with markdown.open("w", encoding="utf-8", errors="backslashreplace", newline="") as md:
        for index, (part, output) in enumerate(zip(parts, outputs, strict=True)):
            normalized = _normalize(service, part, output, parent)
            md.write("\n\n" if index else "")
            md.write(rebase(normalized.markdown, output.folder).strip("\n"))
            fields += [_renumber(f, output.offset) for f in normalized.fields]
            tables += [_renumber(t, output.offset) for t in normalized.tables]
            listed.append(
                {
                    "pages": [part.job.first_page, part.job.last_page],
                    "remote": dict(normalized.remote),
                    "raw": f"{RAW}/{output.folder}",
                }
            )
        md.write("\n")
    for stale in stage.glob("merged_*"):
        stale.unlink()
    service.merged_raw(outputs, stage)
    result = {
        "source": {**source, "parts": listed},
        "service": parent.service,
        "remote": {},
        "fields": fields,
        "tables": tables,
        "markdown": "document.md",
    }
    return Folder(name, parent.id, result, markdown, stage)


def gather(stage: Path, parts: Sequence[Part], parent: Job) -> list[PartOutput]:
    """Each part's stored answer moved under *stage* (``part-001``, …)."""
    stage.mkdir(parents=True, exist_ok=True)
    outputs = []
    for part in parts:
        target = stage / part.folder
        if part.stored.is_dir():
            if os.path.lexists(target):
                shutil.rmtree(target)  # fetched again since: the newer copy wins
            os.rename(part.stored, target)
        elif not target.is_dir():
            raise _lost(part, parent, "is missing")
        outputs.append(PartOutput(target, part.folder, part.doc, part.offset))
    return outputs


def _normalize(service: Service, part: Part, output: PartOutput, parent: Job) -> Normalized:
    try:
        return service.normalize(output.raw, part.doc)
    except DocinboxError:
        raise
    except UNREADABLE as exc:
        raise _lost(part, parent, f"cannot be read ({type(exc).__name__}: {exc})") from exc


def _lost(part: Part, parent: Job, what: str) -> PartOutputLost:
    service = part.job.service or ""
    total = f" of {parent.parts}" if parent.parts else ""
    return PartOutputLost(
        f"{parent.rel_path}: the stored answer of {service} for part {part.job.part}{total} "
        f"(pages {part.job.first_page}-{part.job.last_page}) {what}",
        part_id=part.job.id,
        service=service,
        resubmit=not part.can_refetch,
    )


def rebase(markdown: str, folder: str) -> str:
    """Links into ``raw/`` → into ``raw/<folder>/``."""
    markdown = _MD_LINK.sub(lambda m: f"{m.group(1)}{RAW}/{folder}/", markdown)
    return _HTML_SRC.sub(lambda m: f"{m.group(1)}{RAW}/{folder}/", markdown)


def _renumber(entry: Mapping[str, Any], offset: int) -> Mapping[str, Any]:
    page = entry.get("page")
    if not offset or not isinstance(page, int) or isinstance(page, bool):
        return entry
    return {**entry, "page": page + offset}
