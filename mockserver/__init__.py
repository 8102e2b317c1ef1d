"""A faithful mock of Nanonets v2, MinerU v4 (+ Aliyun OSS uploads) and docparse v1.

Entry points (the top level holds only what users, the daemon and tests import):
:func:`mockserver.app.create_app` (ASGI app), :class:`mockserver.server.MockServer`
(background thread on a socket), ``docinbox-mock`` / ``python -m mockserver``
(:mod:`mockserver.cli`), the pytest fixtures in :mod:`mockserver.pytest_plugin`,
credentials and ids in :mod:`mockserver.defaults`, sample documents in
:mod:`mockserver.samples`, loopback file and callback servers in :mod:`mockserver.loopback`.

Rooms (each package's docstring lists its modules):

- ``core/`` — the runtime every service shares: clock, journal, ledger, fault rules and
  replies, the journal/fault middleware, rate limits and quotas, the context.
- ``nanonets/``, ``mineru/``, ``oss/``, ``docparse/`` — one package per service: its spec
  (which public source each behaviour follows) in the package docstring, ``routes(ctx)``.
- ``engine/`` — the parsing-task engine MinerU and docparse share: tasks and states,
  options, fetching, callbacks, results, their common HTTP helpers.
- ``documents/`` — reading uploads (``pdftext``, ``docmodel``, ``pageranges``) and writing
  the MinerU result zip (``resultzip``).
- ``admin/`` — ``/__admin/...``: one handler per endpoint, a fixed route list.

Adding a service: a package ``mockserver/<name>/`` whose ``__init__`` holds the spec
docstring and ``routes(ctx: MockContext) -> list[BaseRoute]``, and one line in
:data:`mockserver.app.SERVICES`. Inside ``routes``: declare tunable settings with
``ctx.declare_settings(name, defaults)`` (``/__admin/config``), keep state in an object
that registers ``ctx.on_reset`` (and ``on_config`` / ``on_refresh`` as needed), record
accepted documents in ``ctx.ledger``, measure durations on ``ctx.clock``, keep files
under ``ctx.new_dir(...)``, and put the state in ``ctx.state[name]``. Credentials go in
:mod:`mockserver.defaults`; tests in ``tests/mockserver/test_<name>.py`` and a contract
test in ``tests/contract/``.
"""
