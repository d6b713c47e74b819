"""The ``openai:`` adapter against an HTTPS upstream: first token, whole answer, connections.

A proxy in front of OpenAI, or of vLLM on another host, talks to it over TLS. An
adapter that opens a connection for every answer pays a TLS handshake (and,
over a network, its round trips) before every first token. This starts the
scripted OpenAI-compatible server of the tests on loopback with a self-signed
certificate (made with the ``openssl`` command), streams ``--requests`` answers
of ``--chunks`` chunks through tuneback's ``openai:`` adapter one after another,
and prints the median time to the first token and to the end of the answer,
and how many connections the server saw.

Run it with the adapter of another checkout to compare (``PYTHONPATH=<its src>``).

    python bench/bench_upstream.py [--requests 100] [--chunks 5]
"""

from __future__ import annotations

import argparse
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.models.openai_server import FakeOpenAIServer

from tuneback.domain import ChatMessage
from tuneback.models import ModelOptions
from tuneback.models.openai_compat import OpenAIModel


def certificate(directory: Path) -> tuple[Path, Path]:
    key, cert = directory / "upstream.key", directory / "upstream.crt"
    command = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
    command += ["-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1"]
    command += ["-addext", "subjectAltName=IP:127.0.0.1"]
    subprocess.run(command, check=True, capture_output=True)
    return key, cert


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--chunks", type=int, default=5)
    args = parser.parse_args()
    if shutil.which("openssl") is None:
        sys.exit("needs the openssl command to make the upstream's certificate")
    import openai

    with tempfile.TemporaryDirectory() as scratch:
        key, cert = certificate(Path(scratch))
        upstream = FakeOpenAIServer(tls=(str(key), str(cert)))
        upstream.behaviour.chunks = [f"word{n} " for n in range(args.chunks)]
        upstream.start()
        base_url = upstream.base_url
        model = OpenAIModel("fake-model", base_url=base_url, api_key="sk-bench", max_retries=0)
        model.wait_until_loaded()
        # The adapter's own client, told to trust this certificate.
        trust = ssl.create_default_context(cafile=str(cert))
        model._client = openai.OpenAI(
            api_key="sk-bench",
            base_url=base_url,
            max_retries=0,
            http_client=openai.DefaultHttpxClient(verify=trust),
        )
        messages = [ChatMessage(role="user", content="Tell me a story")]
        first_token: list[float] = []
        whole: list[float] = []
        try:
            for attempt in range(10 + args.requests):
                started = time.perf_counter()
                first = None
                for _ in model.stream(messages, ModelOptions()):
                    first = first or time.perf_counter()
                ended = time.perf_counter()
                if attempt >= 10:  # the first ten warm up
                    first_token.append(((first or ended) - started) * 1000)
                    whole.append((ended - started) * 1000)
        finally:
            model._client.close()  # the kept connection, so the server stops at once
            upstream.stop()
    connections = len({request.client_port for request in upstream.requests})
    print(f"{args.requests} answers of {args.chunks} chunks from an HTTPS upstream on loopback:")
    print(f"  first token p50 {statistics.median(first_token):6.2f} ms")
    print(f"  whole answer p50 {statistics.median(whole):6.2f} ms")
    print(f"  connections the upstream saw: {connections} for {len(upstream.requests)} answers")


if __name__ == "__main__":
    main()
