"""A local HTTP receiver that counts the webhook messages the relay delivers (for benchmarks)."""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SINGLE = re.compile(r"^\[(RJK-[0-9A-Z]{4}-[0-9A-Z]{2})\]")
DIGEST_ROW = re.compile(r"^- (RJK-[0-9A-Z]{4}-[0-9A-Z]{2}) · ", re.MULTILINE)


def delivered_rows(title: str, body: str) -> list[str]:
    """The reference of each outbox row a message delivers: the one in a single message's
    subject, or those of a digest's rows (its plain-text body lists one row a line)."""
    single = SINGLE.match(title)
    return [single.group(1)] if single else DIGEST_ROW.findall(body)


class Receiver:
    """Counts POSTs on 127.0.0.1:<port>: when each arrived, and how many per (agency, subject).

    It keeps no message body.
    """

    def __init__(self) -> None:
        self.arrivals: list[float] = []
        self.received: Counter[tuple[str, str]] = Counter()
        # (agency, reference) -> outbox rows delivered: one for a single message, one per row of
        # a digest that lists it
        self.rows: Counter[tuple[str, str]] = Counter()
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                data = json.loads(
                    self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}"
                )
                agency, title = self.path.strip("/"), str(data.get("title", ""))
                with receiver.lock:
                    receiver.arrivals.append(time.perf_counter())
                    receiver.received[(agency, title)] += 1
                    for reference in delivered_rows(title, str(data.get("message", ""))):
                        receiver.rows[(agency, reference)] += 1
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

    def close(self) -> None:
        """Stop listening."""
        self.server.shutdown()
        self.server.server_close()
