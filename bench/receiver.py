"""A local HTTP receiver that counts the webhook messages the relay delivers (for benchmarks)."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver:
    """Counts POSTs on 127.0.0.1:<port> and remembers when each arrived."""

    def __init__(self) -> None:
        self.arrivals: list[float] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    receiver.arrivals.append(time.perf_counter())
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, count: int, timeout: float) -> float | None:
        """The arrival time of the count-th message, or None after `timeout` seconds."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            with self.lock:
                if len(self.arrivals) >= count:
                    return sorted(self.arrivals)[count - 1]
            time.sleep(0.01)
        return None

    def channel_config(self, slugs: list[str]) -> str:
        """An Apprise YAML config sending every agency's messages here."""
        lines = ["version: 1", "urls:"]
        for slug in slugs:
            lines += [f'  - "json://127.0.0.1:{self.port}/{slug}":', f"      - tag: {slug}"]
        return "\n".join(lines) + "\n"
