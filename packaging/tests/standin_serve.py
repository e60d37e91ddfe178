"""The stand-in Rocket.Chat (tests/rocketchat_standin.py) as a program, for the boot tests.

Run inside the booted machine: `python3 standin_serve.py CERT KEY HOOKS_JSON [CERT2 KEY2]`. It serves
hooks over http and, with CERT and KEY, over https on 127.0.0.1 (hook `tls`; with CERT2 and KEY2, a
second https server, hook `plain-ca`), writes their URLs to HOOKS_JSON once ready, and answers
`GET /messages/<hook>` on 127.0.0.1:9990 with the messages that hook accepted, as JSON.
"""

from __future__ import annotations

import http.server
import json
import ssl
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.rocketchat_standin import RocketChatStandin  # noqa: E402

CONTROL_PORT = 9990


def main() -> None:
    cert, key, hooks_path = sys.argv[1:4]
    plain = RocketChatStandin().start()
    owners = {}
    hooks = {}
    for name in ("critical", "warning", "info", "second"):
        hooks[name] = plain.add_hook(name)
        owners[name] = plain
    for name, (chain, private) in {"tls": (cert, key), "plain-ca": tuple(sys.argv[4:6])}.items():
        if not chain:
            continue
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(chain, private)
        owners[name] = RocketChatStandin(tls=context).start()
        hooks[name] = owners[name].add_hook(name)
    hooks["wrong-token"] = hooks["info"].rsplit("/", 1)[0] + "/not-the-token"

    class Control(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            name = self.path.rsplit("/", 1)[-1]
            body = json.dumps(owners[name].messages(name) if name in owners else None).encode()
            self.send_response(200 if name in owners else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    control = http.server.ThreadingHTTPServer(("127.0.0.1", CONTROL_PORT), Control)
    partial = Path(hooks_path + ".partial")
    partial.write_text(json.dumps(hooks))
    partial.rename(hooks_path)
    control.serve_forever()


if __name__ == "__main__":
    main()
