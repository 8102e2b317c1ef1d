"""The parsing-task engine shared by the MinerU v4 and docparse v1 mocks.

Both services run the same lifecycle (seeds 001 and 002):
``waiting-file`` (upload batches only) → ``pending`` → ``running`` (with
``extract_progress``) → ``converting`` (only when ``extra_formats`` were asked for) →
``done`` | ``failed``.

State is never stored: it is computed from timestamps on the mock clock under a lock,
so concurrent polls always agree and ``/__admin/clock/advance`` moves every task at once.
Timings are settings (``/__admin/config``, per service):

``queue_seconds`` (3)        time in ``pending`` once the file is there
``seconds_per_page`` (1)     time in ``running`` per selected page
``converting_seconds`` (3)   time in ``converting`` when ``extra_formats`` were asked for
``zip_validity_seconds`` (7 days) how long a result link works after the task is done
``max_pending`` (1000)       more tasks than this in ``pending`` → ``-60009`` queue full
``page_balance`` (None)      pages the account may still parse (None: unlimited) → ``-60017``
``priority_pages_per_day`` (2000)  seed 002: pages beyond this per day lose priority: their
                              queue time is multiplied by ``low_priority_factor`` (4)
``fetch_timeout`` (30)       real seconds to fetch a URL before ``-60008``
``max_files`` (200)          files per batch request
``callback_retry_seconds``, ``callback_timeout``  see :mod:`~mockserver.engine.callbacks`

Modules:

- :mod:`~mockserver.engine.engine` — :class:`Engine`: one service's tasks, batches, states
  and views, and its settings.
- :mod:`~mockserver.engine.tasks` — ``Task``, ``Batch`` and the state at a given time.
- :mod:`~mockserver.engine.options` — submission options and their validation.
- :mod:`~mockserver.engine.intake` — from a fetched or uploaded file to a running task.
- :mod:`~mockserver.engine.fetch` — downloading a submitted URL.
- :mod:`~mockserver.engine.callbacks` — the ticker thread and callback delivery.
- :mod:`~mockserver.engine.results` — result links, the result zip, the Markdown.
- :mod:`~mockserver.engine.api` — the HTTP helpers and task routes both APIs share.
- :mod:`~mockserver.engine.errors` — :class:`ApiError`, a business error with its code.
"""
