"""The status page in a real headless browser (Debian's chromium): it renders, and a failing hook shows
in another colour. Fails, not skips, under CI=true when chromium is missing (.ci/run installs it)."""

from __future__ import annotations

import http.client
import os
import struct
import subprocess
import zlib
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

from tests.conftest import load_example, require_program

# The page's colours (rcwebhook/web/status.py): a failing hook's badge and border, a working one's.
RED = (0xC6, 0x28, 0x28)
GREEN = (0x2E, 0x7D, 0x32)
PHONE = (390, 1600)
DESKTOP = (1000, 1300)


def screenshot(url: str, out: Path, size: Tuple[int, int], profile: Path) -> Path:
    """Return the PNG chromium made of `url`, headless, with a fresh profile and no network but loopback."""
    chromium = require_program("chromium")
    command = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
               f"--user-data-dir={profile}", f"--window-size={size[0]},{size[1]}", f"--screenshot={out}", url]
    result = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
                            env={**os.environ, "HOME": str(profile)})
    assert result.returncode == 0 and out.is_file(), f"chromium exited {result.returncode}:\n{result.stderr[-3000:]}"
    return out


def pixels(png: Path) -> Tuple[int, int, List[Tuple[int, int, int]]]:
    """Return the width, height and RGB pixels of an 8-bit RGB or RGBA, non-interlaced PNG."""
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    i, idat, header = 8, b"", None
    while i < len(data):
        (length,), kind = struct.unpack(">I", data[i:i + 4]), data[i + 4:i + 8]
        body = data[i + 8:i + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        i += 12 + length
    assert header is not None
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and colour in (2, 6) and interlace == 0, header
    channels = 3 if colour == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * channels
    rows: List[bytearray] = []
    previous = bytearray(stride)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for x in range(stride):
            left = line[x - channels] if x >= channels else 0
            up = previous[x]
            corner = previous[x - channels] if x >= channels else 0
            if kind == 1:
                line[x] = (line[x] + left) & 0xFF
            elif kind == 2:
                line[x] = (line[x] + up) & 0xFF
            elif kind == 3:
                line[x] = (line[x] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                line[x] = (line[x] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 0xFF
        rows.append(line)
        previous = line
    out = [tuple(row[x:x + 3]) for row in rows for x in range(0, stride, channels)]
    return width, height, out  # type: ignore[return-value]


def count(colours: List[Tuple[int, int, int]], wanted: Tuple[int, int, int]) -> int:
    return sum(1 for c in colours if all(abs(a - b) <= 6 for a, b in zip(c, wanted)))


def palette(png: Path) -> Dict[str, int]:
    _, _, colours = pixels(png)
    return {"red": count(colours, RED), "green": count(colours, GREEN),
            "not white": sum(1 for c in colours if c != (255, 255, 255))}


@pytest.fixture
def daemon(start_daemon, rocketchat):
    hooks = {f"ROCKETCHAT_WEBHOOK_{name.upper()}": rocketchat.add_hook(name) for name in ("critical", "warning")}
    return start_daemon(DEDUP_WINDOW="0", ROCKETCHAT_RATE_LIMIT="0", **hooks)


def test_the_page_renders_in_chromium_and_a_failing_hook_is_red(daemon, rocketchat, tmp_path):
    require_program("chromium")
    healthy_payload = load_example()
    assert daemon.post_json(healthy_payload)[0] == 200
    healthy = palette(screenshot(f"{daemon.url}/status", tmp_path / "healthy.png", DESKTOP, tmp_path / "p1"))
    # Rendered, with its styles: the green of the working hooks, and no red anywhere.
    assert healthy["green"] > 500 and healthy["red"] == 0, healthy

    rocketchat.fail_next("critical", 1, status=400, error="Invalid href value provided")
    failing_payload = load_example()
    failing_payload["alerts"][0]["startsAt"] = "2030-01-01T00:00:00Z"
    failing_payload["groupKey"] = '{}:{alertname="<b>not bold</b>"}'
    assert daemon.post_json(failing_payload)[0] == 502
    shot = screenshot(f"{daemon.url}/status", tmp_path / "failing.png", DESKTOP, tmp_path / "p2")
    failing = palette(shot)
    assert failing["red"] > 500 and failing["green"] > 500, failing  # the failing hook red, the other green

    # On a phone's width too: the same colours, the page laid out in one column.
    phone = screenshot(f"{daemon.url}/status", tmp_path / "phone.png", PHONE, tmp_path / "p3")
    width, _, _ = pixels(phone)
    assert width == PHONE[0]
    on_phone = palette(phone)
    assert on_phone["red"] > 200 and on_phone["green"] > 200, on_phone
    keep = os.environ.get("RCWEBHOOK_SCREENSHOTS")  # set to a folder to keep them (docs/status-page.png)
    if keep:
        Path(keep, "status-page.png").write_bytes(shot.read_bytes())
        Path(keep, "status-page-phone.png").write_bytes(phone.read_bytes())


# Counts, in the rendered page, the lines each table header's text takes: a script added to a copy of the
# page (the page itself runs none, and its Content-Security-Policy forbids them), read back from the DOM.
MEASURE = """<script>
document.body.setAttribute("data-header-lines", JSON.stringify(Array.from(document.querySelectorAll("th")).map(
  function (th) { var range = document.createRange(); range.selectNodeContents(th);
                  var tops = {};
                  Array.from(range.getClientRects()).forEach(function (r) { tops[Math.round(r.top)] = 1; });
                  return [th.textContent, Object.keys(tops).length]; })));
document.body.setAttribute("data-overflow", document.documentElement.scrollWidth - window.innerWidth);
</script></body>"""


def header_lines(page: str, tmp_path: Path, size: Tuple[int, int]) -> Tuple[Dict[str, int], int]:
    """Return how many lines each header of the page's table takes, laid out by chromium at `size`, and by how
    many pixels the page is wider than the window."""
    import html
    import json
    import re

    chromium = require_program("chromium")
    copy = tmp_path / f"page-{size[0]}.html"
    copy.write_text(page.replace("</body>", MEASURE), encoding="utf-8")
    profile = tmp_path / f"profile-{size[0]}"
    result = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
         f"--window-size={size[0]},{size[1]}", "--dump-dom", copy.as_uri()],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60, env={**os.environ, "HOME": str(profile)})
    found = re.search(r'data-header-lines="([^"]*)"', result.stdout)
    overflow = re.search(r'data-overflow="(-?\d+)"', result.stdout)
    assert result.returncode == 0 and found and overflow, \
        f"chromium exited {result.returncode}:\n{result.stderr[-3000:]}"
    return dict(json.loads(html.unescape(found.group(1)))), int(overflow.group(1))


def test_table_headers_are_not_broken_mid_word(daemon, tmp_path):
    """A long groupKey squeezes the other columns: their headers keep their words whole."""
    payload = load_example()
    payload["groupKey"] = '{}/{severity=~"critical|warning"}:{alertname="' + "HighCPUUsage" * 12 + '"}'
    payload["receiver"] = "team-" + "x" * 80
    assert daemon.post_json(payload)[0] == 200
    conn = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=10)
    conn.request("GET", "/status")
    page = conn.getresponse().read().decode("utf-8")
    conn.close()
    for size in (DESKTOP, (700, 1300)):
        lines, overflow = header_lines(page, tmp_path, size)
        assert set(lines) == {"time", "receiver", "groupKey", "alerts", "routes", "outcome"}, lines
        assert all(count == 1 for count in lines.values()), (size, lines)
        assert overflow <= 0, (size, overflow)  # and the values still fit the window
