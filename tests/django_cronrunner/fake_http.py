"""A local HTTP server that records every request, standing in for a monitoring service."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Recorded:
    method: str
    path: str
    body: bytes
    headers: dict[str, str]


@dataclass
class FakeService:
    url: str
    requests: list[Recorded] = field(default_factory=list)
    status: int = 200
    delay: float = 0.0


@contextmanager
def fake_service() -> Iterator[FakeService]:
    """Serve on 127.0.0.1 at a free port, recording requests, until the block ends."""
    service = FakeService(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            body = self.rfile.read(length)
            service.requests.append(
                Recorded("POST", self.path, body, {k.lower(): v for k, v in self.headers.items()})
            )
            time.sleep(service.delay)
            try:
                self.send_response(service.status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"OK")
            except BrokenPipeError:
                pass  # the client gave up waiting, as a timed-out ping does

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    service.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield service
    finally:
        server.shutdown()
        server.server_close()
