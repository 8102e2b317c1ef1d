"""docinbox: a hot-folder document parser.

Start at ``docs/architecture.md``; the package's rooms are ``watcher`` (noticing
finished files), ``store`` (the job queue in SQLite), ``router`` and ``sniff``
(which service takes a document), ``services`` (one module per remote API),
``outbox`` (writing results), ``engine`` (tying them together), ``tray`` and ``cli``.
"""

__version__ = "0.1.0"
