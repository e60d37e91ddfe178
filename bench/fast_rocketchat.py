"""A fast stand-in Rocket.Chat for benchmarks: answers every post {"success": true} and counts.

It does no validation (tests/rocketchat_standin.py does); it exists so that the
benchmark measures rcwebhook, not the stand-in. Run it as its own process so it
does not share rcwebhook's interpreter: `python3 fast_rocketchat.py PORT [DELAY]`.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

OK = b'{"success":true}'
COUNTS = {"posts": 0, "attachments": 0}
LOCK = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    delay = 0.0

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.delay:
            time.sleep(self.delay)  # a slow Rocket.Chat, on purpose
        attachments = body.count(b'"title":')
        with LOCK:
            COUNTS["posts"] += 1
            COUNTS["attachments"] += attachments
        self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 16\r\n\r\n" + OK)

    def do_GET(self):
        with LOCK:
            data = json.dumps(COUNTS).encode()
        self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                         % (len(data), data))

    def log_message(self, *args):
        pass


def main() -> None:
    port = int(sys.argv[1])
    Handler.delay = float(sys.argv[2]) if len(sys.argv) > 2 else 0.0
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    server.request_queue_size = 256
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
