"""The OpenAPI document of the API, as committed in ``openapi.json`` at the repository root.

Regenerate it after a deliberate API change::

    python -m tuneback.server.api.openapi > openapi.json

``tests/api/test_openapi.py`` fails while the committed file and the app differ.
"""

from __future__ import annotations

import json
import sys
from typing import Any


def document() -> dict[str, Any]:
    """The app's OpenAPI document (built on a throwaway in-memory database)."""
    from tuneback.config import Settings
    from tuneback.models import EchoModel
    from tuneback.server import create_app
    from tuneback.storage import Store

    with Store("sqlite:///:memory:") as store:
        app = create_app(
            Settings(database_url="sqlite:///:memory:"), store=store, models=[EchoModel()]
        )
        return app.openapi()


def render() -> str:
    return json.dumps(document(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
