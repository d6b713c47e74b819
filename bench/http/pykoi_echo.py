"""pykoi 0.0.11's own app around an echo model, for ``bench_http.py``.

Runs under pykoi's venv, not tuneback's: ``PYKOI_PYTHON pykoi_echo.py PORT``. Its
question-answer database, ``qd.db``, goes in the working directory.

Two things are changed for the benchmark, both outside the routes being measured:

* ``pykoi.component`` imports its RAG component on import, which needs pykoi's ``rag``
  extra (langchain, chromadb); the chat and vote routes never use it, so that one module
  is a stub;
* ``Application.run`` starts uvicorn with its defaults (an access log line per request),
  so the same ``log_level="warning", access_log=False`` as every other target is passed
  in. Telemetry is off.
"""

from __future__ import annotations

import functools
import sys
import types

_rag = types.ModuleType("pykoi.component.retrieval_qa")
_rag.RetrievalQA = None  # type: ignore[attr-defined]
sys.modules["pykoi.component.retrieval_qa"] = _rag

import uvicorn  # noqa: E402
from pykoi import Application  # noqa: E402
from pykoi.chat.llm.abs_llm import AbsLlm  # noqa: E402
from pykoi.component import Chatbot  # noqa: E402


class Echo(AbsLlm):  # type: ignore[misc]
    """Answers each question with itself, like tuneback's ``echo`` model."""

    def predict(self, message: str, num_of_response: int = 1) -> list[str]:
        return [message] * num_of_response

    @property
    def name(self) -> str:
        return "echo"


def main() -> None:
    port = int(sys.argv[1])
    uvicorn.run = functools.partial(uvicorn.run, log_level="warning", access_log=False)
    app = Application(host="127.0.0.1", port=port, enable_telemetry=False)
    app.add_component(Chatbot(model=Echo(), feedback="vote"))
    app.run()


if __name__ == "__main__":
    main()
