"""Couriers: one per Rocket.Chat hook URL, posting the alert states owed to the routes that use it.

A courier takes from the depot the owed states of its routes that a waiting request vouches for, merges
them into one post (one headline per group, one attachment per alert), paces its posts to Rocket.Chat's
rate limit, and reports each answer to the depot as a Verdict (see there), with backoff after a failure
a retry may mend. It holds no reference to the deliverer or to any request.

Nothing is posted that no waiting request vouches for: after a 503, a state waits for
Alertmanager's retry to bring it again. Alertmanager does not send a group whose alerts all
resolved before it ever delivered them, and a firing state posted on our own then would stay in
the channel for good.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

from ..config.keys import key_prefix
from ..config.secrets import redact_url
from ..config.settings import Route, Settings
from ..messages import mentions
from ..messages import render
from ..operations import logs
from . import store as state_store
from .depot import Depot, Verdict
from .ledger import FIRING, Entry, Item, State
from .pacing import WindowLimiter
from .threads import Thread, thread_scope
from .transport import Answer, advice, one_line, rate_limit_wait

log = logging.getLogger("rcwebhook")

IDLE_WAKE = 5.0  # seconds between two looks, while no state is ready, for owed states no request carries any more
BACKOFF_FIRST = 0.5
BACKOFF_FACTOR = 1.5
BACKOFF_CAP = 30.0
MIN_TEXT = 200  # a post's text is not cut shorter than this to fit Message_MaxAllowedSize
BARE_500_ALERT = 3  # bare 500s in a row before saying that the token may be wrong
# While pacing is on, a post waits until no new state has come for LINGER_QUIET seconds (at most
# LINGER_MAX after the first became ready), so that a burst of notifications goes out merged
# instead of spending Rocket.Chat's budget on its first few messages.
LINGER_QUIET = 0.05
LINGER_MAX = 0.5
# After Rocket.Chat refused a post for its @here or @all, posts to that hook leave them out this long
# (or until a reload), so that each does not fail first; then one tries again.
MENTION_RETRY = 3600.0
# Likewise after Rocket.Chat refused a post for naming its sender or avatar (username, alias, icon_url,
# avatar) while the integration's user lacks the message-impersonate permission: posts to that hook leave
# those keys out this long, or until a reload.
IMPERSONATE_RETRY = 3600.0
IMPERSONATE_REFUSAL = "error-user-lacks-message-impersonate-permission"
IMPERSONATE_KEYS = ("username", "alias", "icon_url", "avatar")
# Refusals of a whole post that splitting cannot mend: the hook, the channel or the envelope is wrong.
_WHOLE_POST_REFUSALS = ("overriding destination channel", "impersonate", "invalid-channel", "error-not-allowed")


class Part(NamedTuple):
    """The alerts of one group in a post, and where they go: the channel, or the group's thread."""

    group: str
    entries: List[Entry]
    thread: Optional[Thread]  # the group's open thread
    reply: bool  # posted as a reply in that thread, not in the channel
    mentions: Tuple[str, ...] = ()  # whom it mentions: only a channel message about firing alerts does
    scope: str = ""  # what the thread is kept under (see thread_scope)
    channel: str = ""  # the channel CHANNEL_LABEL named for these alerts, if any


class Post(NamedTuple):
    """One post on its way: the states it carries and the message."""

    entries: List[Entry]
    states: List[State]
    message: Dict[str, object]
    routes: List[str]
    names: str
    parts: List[Part]


class Claimed(NamedTuple):
    """One group's claimed states, and what rendering its message needs, read under the lock."""

    route: Route
    part: Part
    items: List[Item]
    states: List[State]  # the states the post carries (what each entry knew when claimed)
    thread_root: str  # the thread the message replies in, if any
    note: str  # the line that says the incident resolved, if it does


class Claim(NamedTuple):
    """The states a courier took for its next post, rendered without the lock."""

    settings: Settings
    groups: List[Claimed]
    no_special: bool  # @here and @all are left out
    no_impersonate: bool  # the keys that need the message-impersonate permission are left out
    threads: bool  # the post asks for message ids, to follow threads


class Courier:
    """The sending thread of one hook URL: it takes its routes' states from the depot, posts them, and reports
    Rocket.Chat's answer back to the depot."""

    def __init__(self, url: str, depot: Depot, settings: Settings) -> None:
        self.url = url
        self.hook = redact_url(url)
        self.depot = depot
        self.hook_id = state_store.hook_id(url)
        self.settings = settings
        self.routes = _routes_of(settings, url)
        limit, window = settings.rate_limit
        wall, mono = depot.clock.wall(), depot.clock.monotonic()
        history = depot.store.recent_posts(self.hook_id, wall - window - 1) if limit else []
        self.limiter = WindowLimiter(limit, window, (mono - (wall - sent) for sent in history))
        self.hold_until = 0.0
        self.hold_reason = ""
        self.failures = 0
        self.rate_limited = 0  # 429s in a row
        self.bare_500s = 0
        self.text_limit = render.TEXT_LIMIT  # lowered when Rocket.Chat says a text is too long
        self.sending_since = 0.0
        self.rendering_since = 0.0
        self.threads_supported: Optional[bool] = None  # whether this hook's answers carry message ids
        self.special_refused_until = 0.0  # until then, posts leave out @here and @all: Rocket.Chat refused them
        self.impersonate_refused_until = 0.0  # until then, posts leave out username and the like: refused too
        self.ready_since = 0.0
        self.announced_wait = 0.0
        # What the status page shows: the last accepted post, the last failure and why, 429s seen, and
        # the last post's outcome (accepted, rate-limited, failed or refused) and routes.
        self.shown: Dict[str, Any] = {"last_accepted": 0.0, "last_failure": 0.0, "last_error": "",
                                      "last_outcome": "", "seen_429": 0, "last_routes": []}
        # Per route (the configured names: bounded), when its alerts were last accepted and last failed, and why.
        self.by_route: Dict[str, Dict[str, object]] = {}
        self.closed = False
        threading.Thread(target=self._run, name=f"courier {self.hook}", daemon=True).start()

    def reconfigure(self, settings: Settings) -> None:
        """Take new settings (the depot's lock is held)."""
        self.settings = settings
        self.routes = _routes_of(settings, self.url)
        self.limiter.reconfigure(*settings.rate_limit)
        self.special_refused_until = 0.0  # the permission may have been granted meanwhile: try again
        self.impersonate_refused_until = 0.0

    def status(self, now: float) -> Tuple[str, float]:
        """Return why this hook's states are still waiting, and in how many seconds it sends next."""
        if self.rendering_since:
            return f"rendering a message for {now - self.rendering_since:.1f}s (its templates)", 1.0
        if self.sending_since:
            return f"waiting for Rocket.Chat to answer a post sent {now - self.sending_since:.1f}s ago", 1.0
        if self.hold_until > now:
            return self.hold_reason, self.hold_until - now
        slot = self.limiter.next_slot(now)
        if slot > now:
            return self._pacing_reason(), slot - now
        return "waiting for its turn to be posted", 1.0

    def snapshot(self, now: float) -> Dict[str, object]:
        """Return what the status page shows of this hook, read-only (the depot's lock is held)."""
        due = max(self.limiter.next_slot(now), self.hold_until)
        return {**self.shown, "next_post_in": max(0.0, due - now),
                "pacing": self._pacing_reason() if due > now else "",
                "hold": self.hold_reason if self.hold_until > now else "",
                "sending_for": now - self.sending_since if self.sending_since else 0.0,
                "routes": {r: dict(f) for r, f in self.by_route.items()}}

    def close(self) -> None:
        self.closed = True

    # --- the sending thread -----------------------------------------------------------

    def _run(self) -> None:
        depot = self.depot
        while True:
            with depot.lock:
                claim = self._next_claim()
            if claim is None:
                return
            # Rendering runs templates, which may take long (up to TEMPLATE_CPU_BUDGET and beyond): the
            # lock stays free meanwhile, for requests, the status page and the other hooks' couriers.
            # The claimed states are in flight, so that nothing else posts them.
            try:
                post: Optional[Post] = self._compose(claim)
            except Exception as exc:  # a bug must cost a retry, not the hook's thread
                log.exception("Internal error while rendering a post to %s", self.hook)
                post = None
                with depot.lock:
                    self._hold(depot.clock.monotonic() + 1.0, f"internal error: {type(exc).__name__}")
            with depot.lock:
                post = self._take(claim, post)
            if post is None:
                continue
            try:
                self._send(post)
            except Exception as exc:  # a bug must cost a retry, not the hook's thread
                log.exception("Internal error while posting to %s", self.hook)
                with depot.lock:
                    self._sent()
                    self._hold(depot.clock.monotonic() + 1.0, f"internal error: {type(exc).__name__}")
                    depot.give_back(post.entries)

    def _next_claim(self) -> Optional[Claim]:
        """Wait for the next post's turn and claim the states it may carry; None once closed (the depot's
        lock is held)."""
        depot = self.depot
        while not self.closed:
            now = depot.clock.monotonic()
            ready = depot.ready(self.routes)
            if not ready:
                self.ready_since = 0.0
                depot.clock.wait(depot.lock, IDLE_WAKE)
                continue
            self.ready_since = self.ready_since or now
            due = max(self.limiter.next_slot(now), self.hold_until)
            if due > now:
                if due > self.hold_until and due != self.announced_wait:
                    self.announced_wait = due
                    log.info("Waiting %.1fs before the next post to %s: %s", due - now, self.hook,
                             self._pacing_reason())
                    for route in dict.fromkeys(e.route for e in ready):
                        depot.metrics.waits.inc(route=route, reason="pacing")
                depot.clock.wait(depot.lock, due - now)
                continue
            if self.limiter.limit > 0:
                linger = min(depot.last_offer + LINGER_QUIET, self.ready_since + LINGER_MAX) - now
                if linger > 0:
                    depot.clock.wait(depot.lock, linger)
                    continue
            claim = self._claim(ready, now)
            for group in claim.groups:
                depot.take(group.part.entries, group.states)
            self.ready_since = 0.0
            self.rendering_since = now
            return claim
        return None

    def _claim(self, ready: List[Entry], now: float) -> Claim:
        """Return what the post for the oldest ready states is made of: their groups, each with what
        rendering its message needs, read now (the depot's lock is held)."""
        cap = min((e.max_batch for e in ready if e.max_batch), default=0) or len(ready)
        groups: Dict[Tuple[str, str, str], List[Entry]] = {}
        for entry in ready[:cap]:
            assert entry.item is not None
            groups.setdefault((entry.route, entry.item.context.group, entry.item.channel), []).append(entry)
        no_special = self.special_refused_until > now
        threads_on = self.settings.threads and self.threads_supported is not False
        wall = self.depot.clock.wall()
        claimed = []
        for (route_name, group, channel), entries in groups.items():
            route = self._route(route_name)
            if channel:
                route = route._replace(channel=channel)
            scope = thread_scope(group, route.receiver, channel)
            thread = self.depot.threads.get(self.hook_id, scope, wall) if threads_on else None
            reply = thread is not None and not any(_announces(e, thread) for e in entries)
            called = () if reply else mentions.called(route.mention, [e.item.alert for e in entries])
            part = Part(group, entries, thread, reply, mentions.without_special(called) if no_special else called,
                        scope, channel)
            claimed.append(Claimed(route, part, [e.item for e in entries], [e.known for e in entries],
                                   thread.root if reply and thread else "",
                                   self.depot.resolution_note(thread, entries) if reply and thread else ""))
        return Claim(self.settings, claimed, no_special, self.impersonate_refused_until > now, threads_on)

    def _compose(self, claim: Claim) -> Post:
        """Return the post for the claimed states: as many of them as fit one message (the depot's lock is
        not held: this renders)."""
        settings = claim.settings
        # The mentions go in front of the headlines, once for a whole post: the headlines leave them room.
        line_limit = min(mentions.LINE_LIMIT, self.text_limit // 2)
        mentioned = mentions.line((group.part.mentions for group in claim.groups), line_limit)
        text_limit = self.text_limit - (len(mentioned) + 1 if mentioned else 0)
        post, taken = self._fill(claim, text_limit, 0)
        # Short of room for the headlines (Message_MaxAllowedSize lowered): shorter ones, so that a storm
        # still goes out in few posts instead of one post per group, each spending Rocket.Chat's budget.
        shortenable = settings.templates is None or "text" not in settings.templates.names
        shorten = 0
        while post.short_of_text and shortenable and shorten < render.SHORTEST:
            shorten += 1
            shorter, more = self._fill(claim, text_limit, shorten)
            if len(more) > len(taken):
                post, taken = shorter, more
            elif not shorter.short_of_text:
                break
        parts = [group.part for group in taken]
        entries = [e for part in parts for e in part.entries]
        merged = dict(render.merge(post.messages))
        called = mentions.line((p.mentions for p in parts), line_limit)
        if called:
            merged["text"] = f"{called} {merged['text']}"
        if claim.no_special:  # a template may have written them too
            merged["text"] = mentions.neutralize(str(merged["text"]))
        if claim.no_impersonate:
            for key in IMPERSONATE_KEYS:
                merged.pop(key, None)
        if claim.threads:
            merged["separateResponse"] = True
        return Post(entries, [state for group in taken for state in group.states], merged,
                    list(dict.fromkeys(e.route for e in entries)),
                    one_line(",".join(e.name for e in entries)), parts)

    def _fill(self, claim: Claim, text_limit: int, shorten: int) -> Tuple[render.Post, List[Claimed]]:
        """Return the messages of the claimed groups that fit one post, from the first on, with headlines
        shortened `shorten` steps, and those groups."""
        post = render.Post(text_limit)
        taken: List[Claimed] = []
        # The groups of one post share one TEMPLATE_CPU_BUDGET: a post merges up to hundreds of them, and
        # every other state of this hook waits for its rendering.
        deadline = time.thread_time() + claim.settings.template_cpu_budget
        for group in claim.groups:
            # Rendered one group after the other, until one does not fit: under load many groups are
            # ready, and rendering those that wait for the next post would be work thrown away.
            items = group.items
            rendered = render.group_message(
                group.route, [i.alert for i in items], items[-1].context.external_url,
                max(i.context.truncated_alerts for i in items), claim.settings, text_limit,
                thread=group.thread_root, note=group.note, receiver=items[-1].context.receiver,
                group_labels=items[-1].context.group_labels, shorten=shorten, cpu_deadline=deadline)
            if not post.add(rendered):
                break
            taken.append(group)
        return post, taken

    def _take(self, claim: Claim, post: Optional[Post]) -> Optional[Post]:
        """Return the rendered post to send, giving back the claimed states it does not carry; None, every
        state given back, when there is none or the hook's settings changed meanwhile (the depot's lock is
        held)."""
        self.rendering_since = 0.0
        if self.closed or self.settings is not claim.settings:
            post = None  # the states may belong to another hook now: they are claimed again from the start
        carried = {id(entry) for entry in post.entries} if post is not None else set()
        left = [e for group in claim.groups for e in group.part.entries if id(e) not in carried]
        if left:
            self.depot.give_back(left)
        if post is None or not post.entries:
            return None
        self.sending_since = self.depot.clock.monotonic()
        self.depot.posts_in_flight += 1
        return post

    def _sent(self) -> None:
        """The post being sent was answered, or failed (the depot's lock is held; once per post)."""
        if self.sending_since:
            self.sending_since = 0.0
            self.depot.posts_in_flight -= 1
            if self.closed:
                self.depot.lock.notify_all()  # a stop may be waiting for it (Deliverer.close)

    def _route(self, name: str) -> Route:
        """Return the route named `name`, or one of that name on this hook once the settings lost it."""
        return self.settings.routes.get(name) or Route(name, self.url)

    def _pacing_reason(self) -> str:
        limit, window = self.settings.rate_limit
        return f"pacing to ROCKETCHAT_RATE_LIMIT={limit}/{window:g} (Rocket.Chat's own limit per hook)"

    def _fields(self, event: str, post: Post, outcome: str) -> dict:
        """Return the journal fields of a log line about `post`."""
        groups = list(dict.fromkeys(part.group for part in post.parts))
        return logs.fields(event, route=post.routes, hook=self.hook, group_key=groups, alerts=post.names,
                           outcome=outcome)

    def _hold(self, until: float, reason: str) -> None:
        self.hold_until = until
        self.hold_reason = reason

    def _send(self, post: Post) -> None:
        """Post one message and report Rocket.Chat's answer to the depot."""
        depot = self.depot
        payload = json.dumps(post.message, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass")
        started = depot.clock.monotonic()
        answer = depot.transport(self.url, payload, self.settings.delivery_timeout)
        now, wall = depot.clock.monotonic(), depot.clock.wall()
        took = now - started
        routes = ",".join(post.routes)
        merged = f" merged={len(post.entries)}" if len(post.entries) > 1 else ""
        outcome = "accepted" if answer.accepted else "failed" if answer.transient else "refused"
        for route in post.routes:
            depot.metrics.posts.inc(route=route, outcome=outcome)
            depot.metrics.post_duration.observe(took, route=route)
        if (answer.status or answer.sent) and self.limiter.limit:  # it reached Rocket.Chat, whose limiter counted it
            depot.store.record_post(self.hook_id, wall)
        with depot.lock:
            self._sent()
            if answer.status or answer.sent:
                # Rocket.Chat counted it when it arrived, at the latest when it answered: a post that was slow
                # to arrive opened its window late, so the window is reckoned from the answer.
                self.limiter.record(now)
            self._note(post, answer, outcome, wall)
            if answer.accepted:
                self.failures = self.rate_limited = self.bare_500s = 0
                verdict = Verdict.POSTED
            elif answer.transient:
                verdict = Verdict.RETRY
                self._retry_later(answer, now, routes, post)
            else:
                verdict = self._refused(post, answer, routes, took, merged)
            saved = depot.report(post.entries, post.states, answer, verdict, wall)
            if verdict is Verdict.POSTED:
                threads = self._follow_threads(post, answer, wall)
                log.info("Alert sent successfully to Rocket.Chat: %d (route=%s alerts=%s hook=%s took=%.3fs%s%s)",
                         answer.status, routes, post.names, self.hook, took, merged, threads,
                         extra=self._fields("delivered", post, outcome))
            depot.save(saved)

    def _note(self, post: Post, answer: Answer, outcome: str, wall: float) -> None:
        """Keep what the status page shows of this answer."""
        figures = {"last_accepted": wall} if answer.accepted else \
            {"last_failure": wall, "last_error": f"{answer.status or 'no answer'}: {answer.error}"}
        self.shown.update(figures, last_outcome=outcome if answer.status != 429 else "rate-limited",
                          last_routes=list(post.routes))
        self.shown["seen_429"] += answer.status == 429
        for route in post.routes:
            kept = {"last_accepted": 0.0, "last_failure": 0.0, "last_error": ""}
            self.by_route.setdefault(route, kept).update(figures)

    def _follow_threads(self, post: Post, answer: Answer, wall: float) -> str:
        """Open, move, extend or end the threads of an accepted post's groups; return what the log line
        says of them (the lock is held)."""
        if not self.settings.threads:
            return ""
        if not answer.separate or not answer.ids:
            if self.threads_supported is None:
                log.info("Rocket.Chat returned no message id for a post to %s: it is too old for separateResponse "
                         "(Rocket.Chat 7.x after 7.8 and later return one), so posts to this hook do not use "
                         "threads", self.hook)
            self.threads_supported = False
            return ""
        self.threads_supported = True
        replied = [self.depot.follow_thread(self.hook_id, part.scope, part.thread, part.reply,
                                            part.entries, answer.ids[0], wall) for part in post.parts]
        return "".join(dict.fromkeys(f" thread={t.root}" for t in replied if t is not None))

    def _refused(self, post: Post, answer: Answer, routes: str, took: float, merged: str) -> Verdict:
        """Return what a post Rocket.Chat refused comes to: tried again shorter, without what was refused, or
        split; or refused for good."""
        text = str(post.message.get("text", ""))
        special = mentions.special(text)
        if mentions.REFUSAL in answer.error and special:
            self._special_refused(post, special, answer)
            return Verdict.AGAIN
        sender = [key for key in IMPERSONATE_KEYS if post.message.get(key)]
        if IMPERSONATE_REFUSAL in answer.error and sender:
            self._impersonate_refused(post, sender, answer)
            return Verdict.AGAIN
        if "error-message-size-exceeded" in answer.error and render.units(text) > MIN_TEXT:
            self.text_limit = max(MIN_TEXT, render.units(text) // 2)
            self.depot.metrics.refusals.inc(route=post.routes[0], reason="message_too_long")
            log.warning("Rocket.Chat refused a post to %s as too long (%d UTF-16 units of text; its "
                        "Message_MaxAllowedSize is lower): posting it again with at most %d",
                        self.hook, render.units(text), self.text_limit)
            return Verdict.AGAIN
        whole = answer.bad_token or answer.status == 404 or any(w in answer.error for w in _WHOLE_POST_REFUSALS)
        if len(post.entries) > 1 and not whole:
            log.warning("Rocket.Chat refused a post of %d alerts for route %s (%s %s): posting them in smaller "
                        "parts so that the one it refuses does not hold back the others",
                        len(post.entries), routes, answer.status, answer.error)
            return Verdict.SPLIT
        reason = "bad_token" if answer.bad_token or answer.status == 404 else "invalid_message"
        for route in post.routes:
            self.depot.metrics.refusals.inc(route=route, reason=reason)
        log.error("Rocket.Chat refused the post for route %s: %s %s (alerts=%s hook=%s took=%.3fs%s); %s",
                  routes, answer.status, answer.error, post.names, self.hook, took, merged,
                  advice(self._route(post.routes[0]), answer,
                         next((part.channel for part in post.parts if part.channel), ""),
                         self.settings.channel_label), extra=self._fields("refused", post, "refused"))
        return Verdict.REFUSED

    def _special_refused(self, post: Post, special: Tuple[str, ...], answer: Answer) -> None:
        """Leave @here and @all out of this hook's posts for a while, the refused one first (the lock is
        held): its alerts are posted again without them, so that a mention never costs an alert."""
        self.special_refused_until = self.depot.clock.monotonic() + MENTION_RETRY
        asked = [part for part in post.parts if mentions.special(" ".join(part.mentions))]
        routes = list(dict.fromkeys(part.entries[0].route for part in asked)) or post.routes
        for route in routes:
            self.depot.metrics.mention_refusals.inc(route=route)
        said = " and ".join(f"@{name}" for name in special)
        # Rocket.Chat's answer does not say which of the two permissions is missing.
        lacking = " or the ".join(mentions.permissions(special))
        sources = [f"{key_prefix(r.receiver)}MENTION_{r.severity.upper()}"
                   for r in map(self._route, routes) if mentions.special(r.mention)]
        if any(mentions.special(e.item.alert.annotations.get(mentions.ANNOTATION, ""))
               for part in asked for e in part.entries if e.item is not None):
            sources.append(f"the alerts' {mentions.ANNOTATION} annotation")
        log.error("Rocket.Chat refused a post to %s: %s %s: the integration's user may not mention %s (it lacks the "
                  "%s permission); posting it again without %s (alerts=%s route=%s), and leaving %s out of posts to "
                  "this hook for %s or until a reload; to have %s notify, grant %s to the integration's user (or its "
                  "bot role) in Rocket.Chat, Administration > Workspace > Permissions%s",
                  self.hook, answer.status, answer.error, said.replace(" and ", " or "), lacking, said, post.names,
                  ",".join(routes), said, render.duration(MENTION_RETRY), said,
                  " and ".join(mentions.permissions(special)),
                  f", or take {said} out of {' and '.join(sources)}" if sources else "",
                  extra=self._fields("mention-refused", post, "refused"))

    def _impersonate_refused(self, post: Post, sender: List[str], answer: Answer) -> None:
        """Leave the sender's name and avatar out of this hook's posts for a while, the refused one first
        (the lock is held): its alerts are posted again without them, so that a name never costs an alert."""
        self.impersonate_refused_until = self.depot.clock.monotonic() + IMPERSONATE_RETRY
        for route in post.routes:
            self.depot.metrics.impersonate_refusals.inc(route=route)
        keys = " and ".join(sender)
        # A hook set's name is its own ROCKETCHAT_USERNAME, else the default set's.
        sources = list(dict.fromkeys(
            "ROCKETCHAT_USERNAME" if not r.receiver or r.username == self.settings.username
            else f"{key_prefix(r.receiver)}ROCKETCHAT_USERNAME" for r in map(self._route, post.routes)))
        log.error("Rocket.Chat refused a post to %s: %s %s: the integration's user may not post under another name "
                  "or avatar (it lacks the message-impersonate permission); posting it again without %s (alerts=%s "
                  "route=%s), and leaving %s out of posts to this hook for %s or until a reload; to have posts "
                  "show that name, grant message-impersonate to a role of the user the integration posts as (its "
                  "'Post as' setting) in Rocket.Chat, Administration > Workspace > Permissions > message-impersonate, "
                  "or unset %s",
                  self.hook, answer.status, answer.error, keys, post.names, ",".join(post.routes), keys,
                  render.duration(IMPERSONATE_RETRY), " or ".join(sources),
                  extra=self._fields("impersonate-refused", post, "refused"))

    def _retry_later(self, answer: Answer, now: float, routes: str, post: Post) -> None:
        """Hold the hook as long as Rocket.Chat asks, or back off."""
        reason = "rate_limited" if answer.status == 429 else "no_answer" if answer.status == 0 else "server_error"
        for route in post.routes:
            self.depot.metrics.retries.inc(route=route, reason=reason)
            if answer.status == 429:
                self.depot.metrics.waits.inc(route=route, reason="rocketchat_429")
        if answer.status == 429:
            self.rate_limited += 1
            asked = rate_limit_wait(answer, self.depot.clock.wall())
            window = self.settings.rate_limit[1] or 60.0
            # Asked again and again: a limit lower than ours, or a clock that disagrees. Back off.
            delay = max(window if asked is None else asked, min(window, 2.0 ** (self.rate_limited - 1)))
            self._hold(now + delay, f"Rocket.Chat's rate limit (429): {answer.error}")
            log.warning("Rate limited by Rocket.Chat on route %s (hook=%s): waiting %.1fs%s", routes, self.hook,
                        delay, " as it asked" if asked is not None else " (no wait given; one window)",
                        extra=self._fields("rate-limited", post, "rate-limited"))
            return
        self.failures += 1
        delay = min(BACKOFF_CAP, BACKOFF_FIRST * BACKOFF_FACTOR ** (self.failures - 1))
        delay *= random.uniform(0.8, 1.2)  # jitter
        cause = f"{answer.status or 'no answer'}: {answer.error}"
        self._hold(now + delay, f"Rocket.Chat is failing ({cause}); retrying")
        log.warning("Post to route %s failed (%s); retrying in %.2fs (attempt %d, hook=%s)",
                    routes, cause, delay, self.failures + 1, self.hook, extra=self._fields("retrying", post, "failed"))
        if answer.status == 500 and not answer.bad_token:
            self.bare_500s += 1
            if self.bare_500s == BARE_500_ALERT:
                self.depot.metrics.refusals.inc(route=post.routes[0], reason="bad_token")
                log.error("Rocket.Chat answered %d posts in a row to %s with 500: Rocket.Chat 7.x and later answer "
                          "a wrong token so; %s", BARE_500_ALERT, self.hook,
                          advice(self._route(post.routes[0]), answer._replace(status=404)))
        else:
            self.bare_500s = 0


def _announces(entry: Entry, thread: Thread) -> bool:
    """Return whether posting `entry`'s state announces a newly firing alert: one the thread has not
    shown firing (new to it, fired again, or firing since another startsAt)."""
    state = entry.known
    if state.status != FIRING:
        return False
    posted = entry.posted
    return f"{entry.route}/{entry.key}" not in thread.alerts or posted is None or posted.status != FIRING \
        or posted.starts != state.starts


def _routes_of(settings: Settings, url: str) -> List[str]:
    """Return the names of the routes that post to `url`."""
    return [route.name for route in settings.routes.values() if route.url == url]
