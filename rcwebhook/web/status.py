"""GET /status (an HTML page, or JSON), and GET /ready: what an operator needs to see at a glance.

The facts come from what the daemon keeps anyway (the couriers' state, the ledger, the metrics) and
the board (rcwebhook.web.board); a page costs one short hold of the delivery lock. This module loads
when /status or /ready is first asked for: a daemon nobody looks at does not hold the page's code.
"""

from __future__ import annotations

import html
import time
from typing import Any, Dict, List, Mapping, Optional

from .. import __version__
from ..config.secrets import redact_url
from .board import Board

# The outcomes of a hook's last post that count as failing, for the page's colour and for /ready;
# a 429 is Rocket.Chat pacing us, not failing.
FAILING = ("failed", "refused")
# What the page shows of the hook of a route without a URL, or whose hook has no courier yet.
_NO_HOOK = {"last_outcome": "", "seen_429": 0, "next_post_in": 0.0, "hold": "", "pacing": ""}


def facts(board: Board, delivery: Mapping[str, Any], dry_run: bool) -> Dict[str, Any]:
    """Return everything /status shows, as JSON-ready data: no URL but redacted ones, no secret."""
    now = time.time()
    with board.lock:  # copied under the lock, which every notification takes; formatted after it
        recent, reload, config_file = list(board.recent), dict(board.reload), board.config_file
    recent = [{**entry, "time": _moment(entry["time"], now)} for entry in reversed(recent)]
    reload["time"] = _moment(reload["time"], now)
    routes = []
    for name, (url, waiting) in delivery["routes"].items():
        hook = delivery["hooks"].get(url, _NO_HOOK) if url else _NO_HOOK
        row: Dict[str, Any] = {"route": name, "hook": redact_url(url) or "", "waiting": waiting,
                               "shared_with": [other for other, (u, _) in delivery["routes"].items()
                                               if url and u == url and other != name]}
        # The route's own figures; the hook's (which other routes may share) labelled with the routes it
        # last posted for, so that a route that never posted does not look as if it did.
        own = hook.get("routes", {}).get(name, {})
        row.update(last_accepted=_moment(own.get("last_accepted", 0.0), now),
                   last_failure=_moment(own.get("last_failure", 0.0), now),
                   last_error=own.get("last_error", ""), last_outcome=hook["last_outcome"], seen_429=hook["seen_429"],
                   next_post_in=round(hook["next_post_in"], 1), pacing=hook["hold"] or hook["pacing"],
                   hook_last_post={"routes": hook.get("last_routes", []), "outcome": hook["last_outcome"],
                                   "accepted": _moment(hook["last_accepted"], now),
                                   "failure": _moment(hook["last_failure"], now), "error": hook["last_error"]}
                   if hook["last_outcome"] else None)
        unresolved = delivery.get("unresolved", {}).get(name)
        row["unresolved_threads"] = None if not unresolved else {
            "count": int(unresolved["count"]), "oldest_started": _moment(unresolved["oldest"], now),
            "older_than_seconds": delivery["unresolved_after"],
            "advice": f"{int(unresolved['count'])} thread{'s' if unresolved['count'] != 1 else ''} open for more "
                      f"than {_ago(delivery['unresolved_after'])} with no resolution: does Alertmanager send "
                      "resolved notifications? Set send_resolved: true in the receiver's webhook_configs"}
        row["failing"] = row["last_outcome"] in FAILING
        row["state"] = ("no URL" if not url else "dry-run" if dry_run else "failing" if row["failing"]
                        else "waiting" if waiting else "ok" if row["last_accepted"] or row["last_failure"]
                        else "no post yet")
        routes.append(row)
    refused = board.refused(now)
    if refused["latest"]:
        refused["latest"]["time"] = _moment(refused["latest"]["time"], now)
    return {
        "service": "rocketchat-webhook-adapter",
        "version": __version__,
        "started": _moment(board.started_wall, now),
        "uptime_seconds": round(time.monotonic() - board.started, 1),
        "config_file": config_file or "",
        "last_reload": reload,
        "dry_run": dry_run,
        "routes": routes,
        "recent": recent,
        "open_threads": delivery["threads"],
        "state_database_bytes": delivery["state_bytes"],
        "ready": readiness(routes, dry_run),
        "refused": refused,
    }


def readiness(routes: List[Mapping[str, Any]], dry_run: bool) -> Dict[str, Any]:
    """Return whether rcwebhook can post: not when every hook it has posted to failed its last attempt."""
    tried = {r["hook"]: r for r in routes if r["hook"] and r["last_outcome"]}
    failing = [r for r in tried.values() if r["failing"]]
    if dry_run:
        return {"ready": True, "reason": "dry-run: nothing is posted"}
    if tried and len(failing) == len(tried):
        reasons = "; ".join(f"{r['hook']} (route {', '.join(r['hook_last_post']['routes']) or r['route']}): "
                            f"{r['hook_last_post']['error']}" for r in failing)
        return {"ready": False, "reason": f"every hook's last post failed: {reasons}"}
    if failing:
        names = ", ".join(r["route"] for r in failing)
        return {"ready": True, "reason": f"some hooks post, others fail (routes {names})"}
    if not tried:
        return {"ready": True, "reason": "no post tried yet"}
    return {"ready": True, "reason": "the last post to every hook tried was accepted"}


def _moment(wall: float, now: float) -> Optional[Dict[str, Any]]:
    if not wall:
        return None
    return {"at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(wall)), "ago_seconds": round(max(0.0, now - wall), 1)}


# --- the page -----------------------------------------------------------------------------------

# No external script, style or font: the page works on an air-gapped host. The Content-Security-Policy
# sent with it forbids scripts and every load, so even a label that got past escaping could not act.
CONTENT_SECURITY_POLICY = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;padding:12px;color:#1d2126;
background:#f4f5f7;font-size:15px;line-height:1.4}
h1{font-size:1.3em;margin:0 0 4px}h2{font-size:1.1em;margin:18px 0 6px}
.meta{color:#555;margin:0 0 8px}.card{background:#fff;border-radius:6px;padding:8px 10px;margin:6px 0;
border-left:6px solid #2e7d32;overflow-wrap:anywhere}
.card.failing{border-left-color:#c62828;background:#fdecea}.card.waiting{border-left-color:#ef6c00}
.card.idle{border-left-color:#9e9e9e}
.badge{display:inline-block;padding:0 6px;border-radius:4px;font-size:.85em;color:#fff;background:#2e7d32}
.failing .badge{background:#c62828}.waiting .badge{background:#ef6c00}.idle .badge{background:#757575}
.ready{padding:6px 10px;border-radius:6px;color:#fff;background:#2e7d32;margin:4px 0}.ready.no{background:#c62828}
.ready.warn{background:#e65100}
table{border-collapse:collapse;width:100%;background:#fff;font-size:.9em;table-layout:fixed}
col:nth-child(1){width:13em}col:nth-child(2),col:nth-child(5){width:13%}col:nth-child(3){width:24%}
col:nth-child(4){width:15%}
td,th{padding:4px 6px;border-bottom:1px solid #e0e0e0;text-align:left;vertical-align:top}
th,td:first-child{white-space:nowrap}td{overflow-wrap:break-word}td code{overflow-wrap:anywhere}
dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 10px;margin:4px 0}dt{color:#555}dd{margin:0}
code{font-size:.9em}.bad{color:#c62828;font-weight:600}dd.warn{color:#e65100;font-weight:600}
@media (max-width:600px){table,tbody,tr,td{display:block}thead{display:none}tr{border-bottom:2px solid #ccc}
td{border:0;padding:2px 6px}}
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _when(moment: Optional[Mapping[str, Any]]) -> str:
    return f"{_e(moment['at'])} ({_ago(moment['ago_seconds'])} ago)" if moment else "never"


def _ago(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    if seconds < 172800:
        return f"{seconds // 3600}h {seconds % 3600 // 60}m"
    return f"{seconds // 86400}d" + (f" {seconds % 86400 // 3600}h" if seconds % 86400 >= 3600 else "")


def _size(count: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1024  # type: ignore[assignment]


def _shared(row: Mapping[str, Any]) -> str:
    """Return the card's line on a hook other routes share: its last post, and for which routes."""
    if not row["shared_with"]:
        return ""
    line = f"<dt>hook shared with</dt><dd>{_e(', '.join(row['shared_with']))}"
    last = row["hook_last_post"]
    if last:
        when = last["accepted"] if last["outcome"] == "accepted" else last["failure"]
        line += (f"; its last post, for route{'' if len(last['routes']) == 1 else 's'} "
                 f"<b>{_e(', '.join(last['routes']))}</b>: {_e(last['outcome'])} {_when(when)}")
    return line + "</dd>"


def _refused_banner(refused: Mapping[str, Any]) -> str:
    """Return the warning that notifications are being refused (answered 4xx: Alertmanager does not send them
    again), or ''."""
    count = refused["count"]
    if not count:
        return ""
    latest = refused["latest"]
    return (f"<p class=\"ready warn\" data-refused=\"{int(count)}\">{int(count)} notification"
            f"{'' if count == 1 else 's'} refused in the last {refused['window_seconds'] // 60} min (answered 4xx, "
            f"which Alertmanager does not send again); the latest, {_when(latest['time'])}, to "
            f"<code>{_e(latest['path'])}</code>: {_e(latest['outcome'].split(' ', 1)[0])} {_e(latest['reason'])}</p>")


def page(data: Mapping[str, Any]) -> bytes:
    """Return the status page: one self-contained HTML document, every value escaped."""
    ready = data["ready"]
    refused = data["refused"]
    reload = data["last_reload"]
    out: List[str] = [
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>",
        '<meta name=viewport content="width=device-width,initial-scale=1">',
        '<meta http-equiv=refresh content=30>',
        f"<title>rcwebhook {_e(data['version'])} status</title><style>{_STYLE}</style></head><body>",
        f"<h1>rcwebhook {_e(data['version'])}</h1>",
        f"<p class=meta>up {_ago(data['uptime_seconds'])} (since {_e(data['started']['at'])}); "
        f"page made {_e(time.strftime('%Y-%m-%d %H:%M:%SZ', time.gmtime()))}; refreshes every 30 s"
        f"{'; <b>dry-run</b>' if data['dry_run'] else ''}</p>",
        f"<p class=\"ready{'' if ready['ready'] else ' no'}{' warn' if refused['count'] and ready['ready'] else ''}\">"
        f"{'Ready' if ready['ready'] else 'Not ready'}: {_e(ready['reason'])}</p>",
        _refused_banner(refused),
        "<h2>Configuration</h2><dl>",
        f"<dt>file</dt><dd><code>{_e(data['config_file'] or '(none: the environment)')}</code></dd>",
        f"<dt>last {_e(reload['kind'])}</dt><dd>{_when(reload['time'])}: "
        + ("worked" if reload["ok"] else f"<span class=bad>failed</span>: {_e(reload['error'])}") + "</dd>",
        f"<dt>open threads</dt><dd>{int(data['open_threads'])}</dd>",
        f"<dt>state database</dt><dd>{_size(int(data['state_database_bytes']))}</dd></dl>",
        "<h2>Routes and hooks</h2>",
    ]
    for row in data["routes"]:
        css = {"failing": "failing", "waiting": "waiting", "ok": "", "dry-run": ""}.get(row["state"], "idle")
        out.append(f'<div class="card {css}" data-route="{_e(row["route"])}" data-state="{_e(row["state"])}">'
                   f"<b>{_e(row['route'])}</b> <span class=badge>{_e(row['state'])}</span><dl>"
                   f"<dt>hook</dt><dd><code>{_e(row['hook'] or '(no URL)')}</code></dd>"
                   f"<dt>last accepted</dt><dd>{_when(row['last_accepted'])}</dd>"
                   f"<dt>last failure</dt><dd>{_when(row['last_failure'])}"
                   + (f": <span class=bad>{_e(row['last_error'])}</span>" if row["last_error"] else "")
                   + "</dd>" + _shared(row)
                   + f"<dt>waiting</dt><dd>{int(row['waiting'])} alert state"
                   f"{'' if row['waiting'] == 1 else 's'}</dd>"
                   f"<dt>next post</dt><dd>"
                   + (f"in {row['next_post_in']:.1f}s: {_e(row['pacing'])}" if row["next_post_in"] > 0 else "now")
                   + f"</dd><dt>429s seen</dt><dd>{int(row['seen_429'])}</dd>"
                   + (f"<dt>threads</dt><dd class=warn>{_e(row['unresolved_threads']['advice'])}</dd>"
                      if row["unresolved_threads"] else "") + "</dl></div>")
    out.append(f"<h2>Recent notifications ({len(data['recent'])})</h2>")
    if data["recent"]:
        # Fixed widths: a long value wraps in its own column rather than squeezing the others' words apart.
        out.append("<table><colgroup><col><col><col><col><col><col></colgroup>"
                   "<thead><tr><th>time</th><th>receiver</th><th>groupKey</th><th>alerts</th><th>routes</th>"
                   "<th>outcome</th></tr></thead><tbody>")
        for entry in data["recent"]:
            alerts = ", ".join(entry["alerts"])
            if entry["alert_count"] > len(entry["alerts"]):
                alerts += f" and {entry['alert_count'] - len(entry['alerts'])} more"
            routes = ", ".join(f"{k}: {v}" for k, v in entry["routes"].items()) or "-"
            bad = "" if entry["outcome"].startswith("2") else " class=bad"
            outcome = entry["outcome"] + (f": {entry['reason']}" if entry.get("reason") else "")
            receiver = f"{entry.get('receiver') or '-'} ({entry.get('path', '/webhook')})"
            out.append(f"<tr><td>{_e(entry['time']['at'])}</td><td>{_e(receiver)}</td>"
                       f"<td><code>{_e(entry['group_key'] or '-')}</code></td>"
                       f"<td>{_e(alerts) or '-'}</td><td>{_e(routes)}</td><td{bad}>{_e(outcome)}</td></tr>")
        out.append("</tbody></table>")
    else:
        out.append("<p>None since rcwebhook started.</p>")
    out.append("<p class=meta>The same as JSON: <code>/status.json</code>. Metrics: <code>/metrics</code>.</p>"
               "</body></html>\n")
    return "".join(out).encode("utf-8")


def wants_json(path: str, accept: str) -> bool:
    """Return whether a /status request asks for JSON: /status.json, or Accept naming JSON before HTML."""
    accept = accept.lower()
    return path == "/status.json" or "application/json" in accept and "text/html" not in accept
