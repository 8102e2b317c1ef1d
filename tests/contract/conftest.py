"""The contract tests use the plugin's real mock server (or the real service, by env)."""

from mockserver.pytest_plugin import (  # noqa: F401  (fixtures, if the entry point is absent)
    mock_ctx,
    mock_server,
    mock_server_session,
    mock_url,
)
