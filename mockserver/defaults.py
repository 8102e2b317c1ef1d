"""The mock's out-of-the-box credentials and identifiers (SPEC: "The mock's defaults").

Everything a test, the embedded daemon or a user needs to talk to a fresh mock
lives here so nobody copies magic strings around.
"""

from __future__ import annotations

#: Nanonets: Basic auth with this key as the user and an empty password.
NANONETS_API_KEY = "mock-nanonets-key"
#: The demo model: fields ``fecha``, ``total``; table ``lineas_detalle``.
NANONETS_MODEL_ID = "00000000-0000-0000-0000-000000000000"
#: MinerU v4: ``Authorization: Bearer mock-mineru-token``.
MINERU_TOKEN = "mock-mineru-token"
#: docparse v1: ``Authorization: Bearer mock-docparse-token``.
DOCPARSE_TOKEN = "mock-docparse-token"
#: Parsio: ``X-API-Key: mock-parsio-key``.
PARSIO_API_KEY = "mock-parsio-key"
#: The demo mailbox, whose parser extracts the demo model's fields (``fecha``, ``total``)
#: and its table ``lineas_detalle`` (``descripcion``, ``cantidad``).
PARSIO_MAILBOX_ID = "mock-mailbox"
#: The user uid of the mock's MinerU account. MinerU signs callbacks with
#: ``checksum = sha256(uid + seed + content)`` (seed 002, ``callback``); a client
#: verifying a callback from the mock uses this uid.
MOCK_UID = "mock-user-0001"
#: ``docinbox-mock`` listens here unless told otherwise (SPEC ``[mock] port``).
DEFAULT_PORT = 8765
#: Default host of ``docinbox-mock``: loopback only.
DEFAULT_HOST = "127.0.0.1"
