"""The review desk: a local web dashboard the daemon serves (issue 17).

- ``auth.py``: the installation's token, the cookie, the ``Host`` check, CSRF;
- ``app.py``: the Starlette application — the JSON API under ``/api/``, server-sent
  events, the page (``static/``: plain HTML, JS and CSS, no build step);
- ``views.py``: documents as the API shows them;
- ``pages.py``: an original's page as an image, rendered in a helper process;
- ``index.py``: the search index of results (also used by the finish step and the CLI);
- ``server.py``: started and stopped by the daemon (daemon/lifecycle.py), on its loop.

This module imports nothing heavy: the finish step imports ``index`` from here.
"""
