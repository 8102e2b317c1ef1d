"""MinerU-style results as the real engines write them (issue 15): tables, the v2 content
list, page numbers under page_ranges, and the self-hosted mineru-api layouts.

End-to-end cases run the MinerU / docparse service against the mock (in-process) in each
of its variants; the rest feed mineru_result folders laid out as the sources show them.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from daemon.config import Secret
from daemon.services.base import Accepted, Normalized, Received, ServiceContext, SourceDocument
from daemon.services.mineru import Mineru, MineruSettings
from daemon.services.mineru_result import normalize, page_mapper, selected_pages
from mockserver import defaults
from mockserver.app import create_app
from mockserver.core import MockContext
from mockserver.samples import multipage_pdf, table_pdf

TABLE = {
    "label": "Tabla 1: Consumo por producto",
    "columns": ["Producto", "Unidades", "Precio"],
    "rows": [["Gasoil", "50", "1.45"], ["AdBlue", "10", "0.80"]],
}


@pytest.fixture
def ctx() -> Iterator[MockContext]:
    """A mock context with its services mounted (so their settings exist)."""
    c = MockContext()
    c.state["app"] = create_app(c)
    yield c
    c.close()


def doc_for(tmp_path: Path, data: bytes, pages: int, options: dict | None = None) -> SourceDocument:
    path = tmp_path / "informe.pdf"
    path.write_bytes(data)
    return SourceDocument(
        job_id=1,
        path=path,
        name="informe.pdf",
        kind="pdf",
        pages=pages,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        workdir=tmp_path / "w",
        options=options or {},
    )


def through_mineru(ctx: MockContext, doc: SourceDocument) -> Normalized:
    """Submit, poll (moving the mock clock) and normalize, as the engine would."""
    settings = MineruSettings(
        name="mineru",
        base_url="http://mock",
        credential=Secret(defaults.MINERU_TOKEN, "inline"),
        timeout=10,
    )
    m = Mineru(settings, ServiceContext(transport=httpx.ASGITransport(app=ctx.state["app"])))

    async def go() -> Normalized:
        try:
            out = (await m.submit([doc], lambda _j, _r: None))[doc.job_id]
            assert isinstance(out, Accepted), out
            current = SourceDocument(**{**doc.__dict__, "remote": dict(out.remote)})
            for _ in range(30):
                ctx.clock.advance(5)
                res = (await m.poll([current], lambda _j, _r: None))[doc.job_id]
                if isinstance(res, Received):
                    return m.normalize(doc.raw, current)
                assert isinstance(res, Accepted), res
                current = SourceDocument(**{**current.__dict__, "remote": dict(res.remote)})
            raise AssertionError("never done")
        finally:
            await m.aclose()

    return asyncio.run(go())


def test_a_table_comes_out_as_columns_rows_page_and_in_the_markdown(
    tmp_path: Path, ctx: MockContext
) -> None:
    result = through_mineru(ctx, doc_for(tmp_path, table_pdf(pages_before=1), 2))
    assert result.tables == [{**TABLE, "page": 1}]
    assert "<table><tr><td>Producto</td>" in result.markdown
    assert "Tabla 1: Consumo por producto" in result.markdown


@pytest.mark.parametrize("numbering", ["restart", "original"])
@pytest.mark.parametrize(
    ("ranges", "page"),
    [("4-5", 4), ("5", 4), ("2,5", 4), ("-1", 4), ("3--1", 4)],
)
def test_page_ranges_pages_are_the_originals_in_either_numbering(
    tmp_path: Path, ctx: MockContext, numbering: str, ranges: str, page: int
) -> None:
    """The open-source engine cuts the PDF first (page_idx restarts at 0); the cloud is
    undocumented: either way the table is on the original's page 5 (index 4)."""
    ctx.configure({"mineru": {"page_idx": numbering}})
    doc = doc_for(tmp_path, table_pdf(pages_before=4), 5, {"page_ranges": ranges})
    result = through_mineru(ctx, doc)
    assert [t["page"] for t in result.tables] == [page]


def test_selected_pages_follow_minerus_syntax() -> None:
    assert selected_pages("2,4-6", 10) == [1, 3, 4, 5]
    assert selected_pages("2--2", 5) == [1, 2, 3]
    assert selected_pages("-1", 5) == [4]
    assert selected_pages("1-200", 3) == [0, 1, 2]
    assert selected_pages("4-6", None) == [3, 4, 5]
    assert selected_pages("2--2", None) is None  # from the end, without a page count
    assert selected_pages(None, 5) is None and selected_pages("", 5) is None
    assert selected_pages("1-a", 5) is None


def write_result(raw: Path, files: dict[str, Any]) -> None:
    for name, content in files.items():
        path = raw / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content if isinstance(content, str) else json.dumps(content), "utf-8")


def test_renumbered_pages_are_recognised_from_the_middle_json(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    write_result(
        raw,
        {
            "layout.json": {"pdf_info": [{"page_idx": 0}, {"page_idx": 1}, {"page_idx": 2}]},
            "x_content_list.json": [{"type": "text", "text": "a", "page_idx": 2}],
        },
    )
    to_original = page_mapper(raw, [1, 2, 3])  # page_ranges "2-4"
    assert [to_original(i) for i in (0, 1, 2)] == [1, 2, 3]
    write_result(raw, {"layout.json": {"pdf_info": [{"page_idx": i} for i in (1, 2, 3)]}})
    same = page_mapper(raw, [1, 2, 3])
    assert [same(i) for i in (1, 2, 3)] == [1, 2, 3]


def test_tables_from_the_v2_content_list_when_there_is_no_v1(tmp_path: Path) -> None:
    """*_content_list_v2.json (opendatalab/MinerU ff2d81ad): pages of blocks, no page_idx."""
    raw = tmp_path / "raw"
    html = "<table><tr><td>a</td><td>b</td></tr><tr><td>1</td><td>2</td></tr></table>"
    write_result(
        raw,
        {
            "full.md": "# T\n",
            "u_content_list_v2.json": [
                [{"type": "title", "content": {"title_content": [], "level": 1}}],
                [
                    {
                        "type": "table",
                        "content": {
                            "image_source": {"path": "images/x.jpg"},
                            "table_caption": [{"type": "text", "content": "Cap"}],
                            "table_footnote": [],
                            "html": html,
                            "table_type": "simple_table",
                        },
                    }
                ],
            ],
        },
    )
    result = normalize(raw, {})
    assert result.tables == [
        {"label": "Cap", "page": 1, "columns": ["a", "b"], "rows": [["1", "2"]]}
    ]


@pytest.mark.parametrize(
    ("layout", "parse_dir", "folder"),
    [
        ("mineru-api", None, "informe/auto"),
        ("mineru-api", "hybrid_auto", "informe/hybrid_auto"),
        ("mineru-api", "vlm", "informe/vlm"),
        ("mineru-api-flat", None, "informe"),
        ("cloud", None, ""),
    ],
)
def test_every_result_layout_reads_the_same(
    tmp_path: Path, ctx: MockContext, layout: str, parse_dir: str | None, folder: str
) -> None:
    """A self-hosted mineru-api nests <name>/<backend>/<name>.md (v3) or <name>/<name>.md
    (2.6–2.7); the cloud zip is flat.  The mock's MinerU serves each (zip_layout)."""
    ctx.configure({"mineru": {"zip_layout": layout, "parse_dir": parse_dir}})
    doc = doc_for(tmp_path, table_pdf(pages_before=2), 3, {"page_ranges": "2-3"})
    result = through_mineru(ctx, doc)
    assert result.tables == [{**TABLE, "page": 2}]
    assert "# Page 2" in result.markdown and "<table>" in result.markdown
    md = (doc.raw / folder / ("informe.md" if folder else "full.md")).read_text()
    assert md.startswith("# Page 2")


def test_image_links_are_rewritten_in_a_nested_layout(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    write_result(
        raw,
        {
            "informe/hybrid_auto/informe.md": "![](images/abc.jpg)\n",
            "informe/hybrid_auto/informe_middle.json": {"pdf_info": [{"page_idx": 0}]},
        },
    )
    assert normalize(raw, {}).markdown == "![](raw/informe/hybrid_auto/images/abc.jpg)\n"


def test_whole_documents_keep_their_numbering(tmp_path: Path, ctx: MockContext) -> None:
    result = through_mineru(ctx, doc_for(tmp_path, table_pdf(pages_before=3), 4))
    assert [t["page"] for t in result.tables] == [3]
    assert "Page 1" in result.markdown and multipage_pdf(1)  # a sample without a table
