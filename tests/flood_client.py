"""A connection flood against rcwebhook, run as a process of its own (bench/hostile.py and the tests).

`python3 tests/flood_client.py PORT COUNT SECONDS [--tls] [--only KIND]` keeps COUNT connections open for SECONDS,
each reopened as soon as the server closes it. They do what a flood does, in turn:
- idle: connect and send nothing (no ClientHello either);
- trickle: send the start of a request, then a byte every TRICKLE seconds, never ending its headers;
- over TLS also: complete the handshake and then send nothing, or send garbage instead of a ClientHello;
- slow-body (only with --only): send a whole head announcing a body of SLOW_BODY bytes, then drag the body
  out, 100 bytes every TRICKLE seconds (needs no API key on loopback).
When done it prints one JSON line: how many connections it opened and how many the server closed.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import sys
import time

TRICKLE = 0.3  # seconds between the trickling connections' bytes
START = b"POST /webhook HTTP/1.1\r\nHost: x\r\nX-Pad: "
SLOW_BODY = 1_000_000
BODY_HEAD = (b"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
             b"Content-Length: %d\r\n\r\n" % SLOW_BODY)


async def one(port: int, kind: str, end: float, counts: dict) -> None:
    """Keep one flood connection of `kind` open until `end`, reopening it whenever it is closed."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    while time.monotonic() < end:
        writer = None
        try:
            tls = context if kind in ("tls-trickle", "tls-handshaken") else None
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", port, ssl=tls), timeout=max(0.1, end - time.monotonic()))
            counts["opened"] += 1
            if kind == "tls-garbage":
                writer.write(b"\x16\x03\x01\x00\x05hello")
            if kind.endswith("trickle") or kind == "slow-body":
                writer.write(BODY_HEAD if kind == "slow-body" else START)
                while time.monotonic() < end:
                    writer.write(b"a" if kind != "slow-body" else b" " * 100)
                    await writer.drain()
                    try:
                        if await asyncio.wait_for(reader.read(65536), TRICKLE) == b"":
                            break
                    except asyncio.TimeoutError:
                        continue
            else:
                await asyncio.wait_for(reader.read(65536), max(0.01, end - time.monotonic()))
            counts["closed"] += time.monotonic() < end
        except (OSError, ssl.SSLError, asyncio.TimeoutError, asyncio.IncompleteReadError):
            counts["failed"] += time.monotonic() < end
            await asyncio.sleep(0.01)  # a refused connect: the listener's backlog is full, try again at once
        finally:
            if writer is not None:
                writer.transport.abort()


async def flood(port: int, count: int, seconds: float, tls: bool, only: str = "") -> dict:
    kinds = ["idle", "tls-trickle", "tls-handshaken", "tls-garbage"] if tls else ["idle", "trickle"]
    kinds = [only] if only else kinds
    counts = {"opened": 0, "closed": 0, "failed": 0}
    end = time.monotonic() + seconds
    await asyncio.gather(*(one(port, kinds[i % len(kinds)], end, counts) for i in range(count)))
    return counts


def main() -> None:
    port, count, seconds = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    tls = "--tls" in sys.argv[4:]
    only = sys.argv[sys.argv.index("--only") + 1] if "--only" in sys.argv else ""
    print("flooding", flush=True)
    print(json.dumps(asyncio.run(flood(port, count, seconds, tls, only))), flush=True)


if __name__ == "__main__":
    main()
