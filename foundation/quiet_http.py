"""The request handler the hub's small stdlib HTTP servers share (the sink's SQL endpoint, every ops endpoint).

The standard handler writes an access line to stderr for every request: under ``gridhub up``
that is a service's log filling with probes and scrapes, so these handlers keep quiet and leave
what is worth logging to the service.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class QuietHandler(BaseHTTPRequestHandler):
    """Answers whole bodies with their length; writes no access log."""

    def send_body(self, status: int, data: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        """One complete answer: status, type, length, any extra headers, then the body."""
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        """Nothing: a door's requests are counted in its metrics, not written line by line."""


class BackgroundServer:
    """A threaded HTTP server on its own daemon thread: started and stopped by the service that owns it."""

    def __init__(self, host: str, port: int, handler: type[BaseHTTPRequestHandler], name: str) -> None:
        self.server = ThreadingHTTPServer((host, port), handler)
        self.url = f"http://{host}:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, name=name, daemon=True)

    def start(self) -> str:
        """Serve in a background thread; return the URL."""
        self._thread.start()
        return self.url

    def stop(self) -> None:
        """Stop serving and release the port."""
        self.server.shutdown()
        self.server.server_close()
