"""The HTTP server: API, pages and the OpenAI-compatible proxy, built by :func:`create_app`."""

from tuneback.server.app import create_app

__all__ = ["create_app"]
