"""The mock's runtime: what every service and the admin API share, one module each.

- :mod:`~mockserver.core.clock` — :class:`MockClock`, the mock's time (speed, advances).
- :mod:`~mockserver.core.journal` — every request in arrival order (``/__admin/requests``).
- :mod:`~mockserver.core.ledger` — every document the mock accepted (``/__admin/tasks``).
- :mod:`~mockserver.core.faults` — fault rules: which requests get a fault.
- :mod:`~mockserver.core.faultreplies` — what each kind of fault sends.
- :mod:`~mockserver.core.middleware` — the layer that journals and faults every request.
- :mod:`~mockserver.core.limits` — rate limiter and quota counter on the mock clock.
- :mod:`~mockserver.core.context` — :class:`MockContext`, one mock's state: the above,
  the services' settings and files, and the reset/config hooks.

Re-exported here, as other packages and tests name them: :class:`MockContext` and
:func:`oss_expired_xml` (the ``expire`` fault's body).
"""

from .context import MockContext
from .faultreplies import oss_expired_xml

__all__ = ["MockContext", "oss_expired_xml"]
