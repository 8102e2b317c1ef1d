"""A faithful mock of Nanonets v2, MinerU v4 (+ Aliyun OSS uploads) and docparse v1.

Entry points: :func:`mockserver.app.create_app` (ASGI app),
:class:`mockserver.server.MockServer` (background thread on a socket),
``docinbox-mock`` / ``python -m mockserver`` (foreground), and the pytest fixtures in
:mod:`mockserver.pytest_plugin`. Credentials and ids: :mod:`mockserver.defaults`.
"""
