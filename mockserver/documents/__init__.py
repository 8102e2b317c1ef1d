"""Documents: what the services read in an upload and what they write back.

- :mod:`~mockserver.documents.pdftext` — Nanonets' reader: a PDF's text lines with their
  positions, images as pages without text.
- :mod:`~mockserver.documents.docmodel` — the MinerU family's reader: accepted types, page
  selection, lines and boxes, and MinerU's error codes for files it refuses.
- :mod:`~mockserver.documents.pageranges` — MinerU's ``page_ranges`` syntax.
- :mod:`~mockserver.documents.resultzip` — the result zip behind ``full_zip_url``.

The sample documents tests and users make live in :mod:`mockserver.samples`.
"""
