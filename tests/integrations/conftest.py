"""The integrations' tests use the SDK's real-app fixture and the loopback OpenAI server."""

from tests.client.conftest import sdk
from tests.models.conftest import _running_openai_server, openai_server

__all__ = ["_running_openai_server", "openai_server", "sdk"]
