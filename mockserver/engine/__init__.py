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
``page_balance`` (None)      docparse: pages the account may still parse (None: unlimited)
                              → ``-60017`` (seed 001); MinerU has none
``priority_pages_per_day`` (2000; MinerU 1000)  pages beyond this per day lose priority:
                              their queue time is multiplied by ``low_priority_factor`` (4)
``fetch_timeout`` (30)       real seconds to fetch a URL before ``-60008``
``max_files`` (200; MinerU 50)   files per batch request (-10002 beyond)
``max_pages`` (600; MinerU 200)  pages per file (-60006 beyond)
``page_limit_counts`` ("file")  what ``max_pages`` counts under ``page_ranges``: the whole
                              ``file`` (a 600-page file with ``page_ranges: "1-200"`` is
                              refused) or the ``selection`` (it is taken); undocumented
                              for the cloud either way (issue 16)
``files_per_day`` (None; MinerU 10 000)  files per account and day (UTC+8) → -60018
``submit_per_minute``, ``query_per_minute`` (0: none; MinerU 300, 1000)  → HTTP 429
``err_msg_language`` ("zh"; MinerU "en")  the language of ``err_msg`` and ``msg``
``err_code`` (False; MinerU True)  a per-task ``err_code`` beside ``err_msg`` (docparse:
                              ``errCode``), "" for the codes in ``err_code_blank_for``
``param_errors`` ("envelope"; MinerU "http400")  how -500/-10002 are answered (MinerU)
``page_idx`` ("restart")     ``restart`` | ``original`` numbering under ``page_ranges``
``zip_layout`` ("cloud")     ``cloud`` | ``mineru-api`` | ``mineru-api-flat`` (see
                              :mod:`~mockserver.documents.resultzip`); ``parse_dir``
                              (None: from the backend) names mineru-api's backend folder
``fail_tasks`` ({})          ``{"<glob on the file name>": code}``: those tasks fail with
                              that code (and its message) after their queue time
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
