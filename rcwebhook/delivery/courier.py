"""Couriers: one per Rocket.Chat hook URL, posting the alert states owed to the routes that use it.

Requests bring alert states to the ledger (see ledger.py) and wait for them. A courier takes the
owed states of its routes that a waiting request vouches for, merges them into one post (one
headline per group, one attachment per alert), paces its posts to Rocket.Chat's rate limit, and
settles them by the answer: accepted states are posted; a refusal fails the requests waiting for
it (a merged post is split first, so that one bad alert cannot fail the others); a failure that a
retry may mend (no answer, 429, 5xx) is tried again with backoff while requests still wait.

Nothing is posted that no waiting request vouches for: after a 503, a state waits for
Alertmanager's retry to bring it again. Alertmanager does not send a group whose alerts all
resolved before it ever delivered them, and a firing state posted on our own then would stay in
the channel for good.
"""

from __future__ import annotations

import json
import logging
import math
import random
import threading
import time
from itertools import islice
from typing import Callable, Dict, List, NamedTuple, Optional, Tuple

from . import transport as delivery
from ..operations import logs
from ..messages import mentions
from ..messages import render as message
from . import store as state_store
from ..config.keys import key_prefix
from ..config.secrets import redact_url
from ..config.settings import Route, Settings
from .transport import Answer, Transport
from .ledger import FIRING, REMINDER_REASON, RESOLVED, Entry, Item, Ledger, State, Ticket
from ..operations.metrics import Metrics
from .pacing import WindowLimiter
from .threads import Thread, Threads, to_row

log = logging.getLogger("rcwebhook")

QUEUE_LIMIT = 50_000  # alert states waiting to be posted, all routes together
PENDING_MAX_AGE = 600.0  # seconds an owed state is kept after the last request that carried it
BACKOFF_FIRST = 0.5
BACKOFF_FACTOR = 1.5
BACKOFF_CAP = 30.0
CANDIDATES = 1000  # owed states looked at for one post
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


class Result(NamedTuple):
    """What became of one route's alerts by the time its request is answered."""

    route: str
    alerts: Tuple[str, ...]
    status: str  # delivered, already-delivered, pending, failed, dry-run
    answer: Optional[Answer] = None  # Rocket.Chat's last answer, if any
    reason: str = ""  # why it is still pending
    retry_in: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status in ("delivered", "already-delivered", "dry-run")


class Part(NamedTuple):
    """The alerts of one group in a post, and where they go: the channel, or the group's thread."""

    group: str
    entries: List[Entry]
    thread: Optional[Thread]  # the group's open thread
    reply: bool  # posted as a reply in that thread, not in the channel
    mentions: Tuple[str, ...] = ()  # whom it mentions: only a channel message about firing alerts does
    scope: str = ""  # what the thread is kept under (see thread_scope)
    channel: str = ""  # the channel CHANNEL_LABEL named for these alerts, if any


def thread_scope(group: str, receiver: str, channel: str) -> str:
    """Return the key a group's thread is kept under on its hook: the groupKey for the default hook set's
    channels, else with the hook set and the channel override, since a thread lives in one channel (and a
    hook set may share its hook with another)."""
    return f"{group}\x1f{receiver}\x1f{channel}" if receiver or channel else group


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
    """The sending thread of one hook URL."""

    def __init__(self, url: str, owner: "Deliverer") -> None:
        self.url = url
        self.hook = redact_url(url)
        self.owner = owner
        self.hook_id = state_store.hook_id(url)
        limit, window = owner.settings.rate_limit
        wall, mono = owner.wall(), owner.clock()
        history = owner.store.recent_posts(self.hook_id, wall - window - 1) if limit else []
        self.limiter = WindowLimiter(limit, window, (mono - (wall - sent) for sent in history))
        self.hold_until = 0.0
        self.hold_reason = ""
        self.failures = 0
        self.rate_limited = 0  # 429s in a row
        self.bare_500s = 0
        self.text_limit = message.TEXT_LIMIT  # lowered when Rocket.Chat says a text is too long
        self.sending_since = 0.0
        self.rendering_since = 0.0
        self.threads_supported: Optional[bool] = None  # whether this hook's answers carry message ids
        self.special_refused_until = 0.0  # until then, posts leave out @here and @all: Rocket.Chat refused them
        self.impersonate_refused_until = 0.0  # until then, posts leave out username and the like: refused too
        self.ready_since = 0.0
        self.announced_wait = 0.0
        # What the status page shows: the last accepted post, the last failure and its reason, 429s seen.
        self.last_accepted = 0.0
        self.last_failure = 0.0
        self.last_error = ""
        self.last_outcome = ""  # accepted, rate-limited, failed or refused
        self.last_routes: List[str] = []  # the routes whose alerts the last post carried
        # Per route (the configured names: bounded), when its alerts were last accepted and last failed, and why.
        self.by_route: Dict[str, Dict[str, object]] = {}
        self.seen_429 = 0
        self.closed = False
        self.thread = threading.Thread(target=self._run, name=f"courier {self.hook}", daemon=True)
        self.thread.start()

    def reconfigure(self, settings: Settings) -> None:
        """Take new settings (the owner's lock is held)."""
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
        """Return what the status page shows of this hook, read-only (the owner's lock is held)."""
        due = max(self.limiter.next_slot(now), self.hold_until)
        return {"last_accepted": self.last_accepted, "last_failure": self.last_failure,
                "last_error": self.last_error, "last_outcome": self.last_outcome, "seen_429": self.seen_429,
                "next_post_in": max(0.0, due - now), "pacing": self._pacing_reason() if due > now else "",
                "hold": self.hold_reason if self.hold_until > now else "",
                "sending_for": now - self.sending_since if self.sending_since else 0.0,
                "last_routes": list(self.last_routes), "routes": {r: dict(f) for r, f in self.by_route.items()}}

    def close(self) -> None:
        self.closed = True

    # --- the sending thread -----------------------------------------------------------

    def _run(self) -> None:
        cond = self.owner.cond
        while True:
            with cond:
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
                with cond:
                    self._hold(self.owner.clock() + 1.0, f"internal error: {type(exc).__name__}")
            with cond:
                post = self._take(claim, post)
            if post is None:
                continue
            try:
                self._send(post)
            except Exception as exc:  # a bug must cost a retry, not the hook's thread
                log.exception("Internal error while posting to %s", self.hook)
                with cond:
                    self.sending_since = 0.0
                    for entry in post.entries:
                        entry.inflight = None
                    self._hold(self.owner.clock() + 1.0, f"internal error: {type(exc).__name__}")
                    cond.notify_all()

    def _next_claim(self) -> Optional[Claim]:
        """Wait for the next post's turn and claim the states it may carry; None once closed (the owner's
        lock is held)."""
        cond = self.owner.cond
        while not self.closed:
            now = self.owner.clock()
            self.owner.expire()
            ready = list(islice(self.owner.ledger.ready(self.owner.routes_of(self.url)), CANDIDATES))
            if not ready:
                self.ready_since = 0.0
                cond.wait(5.0)
                continue
            self.ready_since = self.ready_since or now
            due = max(self.limiter.next_slot(now), self.hold_until)
            if due > now:
                if due > self.hold_until and due != self.announced_wait:
                    self.announced_wait = due
                    log.info("Waiting %.1fs before the next post to %s: %s", due - now, self.hook,
                             self._pacing_reason())
                    for route in dict.fromkeys(e.route for e in ready):
                        self.owner.metrics.waits.inc(route=route, reason="pacing")
                cond.wait(due - now)
                continue
            if self.limiter.limit > 0:
                linger = min(self.owner.last_offer + LINGER_QUIET, self.ready_since + LINGER_MAX) - now
                if linger > 0:
                    cond.wait(linger)
                    continue
            claim = self._claim(ready)
            for group in claim.groups:
                for entry, state in zip(group.part.entries, group.states):
                    entry.inflight = state
            self.ready_since = 0.0
            self.rendering_since = now
            return claim
        return None

    def _claim(self, ready: List[Entry]) -> Claim:
        """Return what the post for the oldest ready states is made of: their groups, each with what
        rendering its message needs, read now (the owner's lock is held)."""
        cap = min((e.max_batch for e in ready if e.max_batch), default=0) or len(ready)
        groups: Dict[Tuple[str, str, str], List[Entry]] = {}
        for entry in ready[:cap]:
            assert entry.item is not None
            groups.setdefault((entry.route, entry.item.context.group, entry.item.channel), []).append(entry)
        owner = self.owner
        settings = owner.settings
        wall = owner.wall()
        no_special = self.special_refused_until > owner.clock()
        claimed = []
        for (route_name, group, channel), entries in groups.items():
            route = settings.routes.get(route_name) or Route(route_name, self.url)
            if channel:
                route = route._replace(channel=channel)
            scope = thread_scope(group, route.receiver, channel)
            thread = owner.threads.get(self.hook_id, scope, wall) if self._threads_on() else None
            reply = thread is not None and not any(_announces(e, thread) for e in entries)
            called = () if reply else mentions.called(route.mention, [e.item.alert for e in entries])
            part = Part(group, entries, thread, reply, mentions.without_special(called) if no_special else called,
                        scope, channel)
            claimed.append(Claimed(route, part, [e.item for e in entries], [e.known for e in entries],
                                   thread.root if reply and thread else "",
                                   _resolution_note(owner.ledger, thread, entries) if reply and thread else ""))
        return Claim(settings, claimed, no_special, self.impersonate_refused_until > owner.clock(),
                     self._threads_on())

    def _compose(self, claim: Claim) -> Post:
        """Return the post for the claimed states: as many of them as fit one message (the owner's lock is
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
        while post.short_of_text and shortenable and shorten < message.SHORTEST:
            shorten += 1
            shorter, more = self._fill(claim, text_limit, shorten)
            if len(more) > len(taken):
                post, taken = shorter, more
            elif not shorter.short_of_text:
                break
        parts = [group.part for group in taken]
        entries = [e for part in parts for e in part.entries]
        merged = dict(message.merge(post.messages))
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
                    delivery.one_line(",".join(e.name for e in entries)), parts)

    def _fill(self, claim: Claim, text_limit: int, shorten: int) -> Tuple[message.Post, List[Claimed]]:
        """Return the messages of the claimed groups that fit one post, from the first on, with headlines
        shortened `shorten` steps, and those groups."""
        post = message.Post(text_limit)
        taken: List[Claimed] = []
        # The groups of one post share one TEMPLATE_CPU_BUDGET: a post merges up to hundreds of them, and
        # every other state of this hook waits for its rendering.
        deadline = time.thread_time() + claim.settings.template_cpu_budget
        for group in claim.groups:
            # Rendered one group after the other, until one does not fit: under load many groups are
            # ready, and rendering those that wait for the next post would be work thrown away.
            items = group.items
            rendered = message.group_message(
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
        state given back, when there is none or the hook's settings changed meanwhile (the owner's lock is
        held)."""
        self.rendering_since = 0.0
        if self.closed or self.owner.settings is not claim.settings:
            post = None  # the states may belong to another hook now: they are claimed again from the start
        carried = {id(entry) for entry in post.entries} if post is not None else set()
        for group in claim.groups:
            for entry in group.part.entries:
                if id(entry) not in carried:
                    entry.inflight = None
        if post is None or not post.entries:
            self.owner.cond.notify_all()
            return None
        if len(carried) < sum(len(group.part.entries) for group in claim.groups):
            self.owner.cond.notify_all()
        self.sending_since = self.owner.clock()
        return post

    def _threads_on(self) -> bool:
        return self.owner.settings.threads and self.threads_supported is not False

    def _pacing_reason(self) -> str:
        limit, window = self.owner.settings.rate_limit
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
        """Post one message and settle its states by the answer."""
        owner = self.owner
        payload = json.dumps(post.message, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass")
        started = owner.clock()
        answer = owner.transport(self.url, payload, owner.settings.delivery_timeout)
        now, wall = owner.clock(), owner.wall()
        took = now - started
        routes = ",".join(post.routes)
        merged = f" merged={len(post.entries)}" if len(post.entries) > 1 else ""
        outcome = "accepted" if answer.accepted else "failed" if answer.transient else "refused"
        for route in post.routes:
            owner.metrics.posts.inc(route=route, outcome=outcome)
            owner.metrics.post_duration.observe(took, route=route)
        if (answer.status or answer.sent) and self.limiter.limit:  # it reached Rocket.Chat, whose limiter counted it
            owner.store.record_post(self.hook_id, wall)
        saved: List[state_store.Row] = []
        with owner.cond:
            self.sending_since = 0.0
            if answer.status or answer.sent:
                # Rocket.Chat counted it when it arrived, at the latest when it answered: a post that was slow
                # to arrive opened its window late, so the window is reckoned from the answer.
                self.limiter.record(now)
            self.last_outcome = outcome if answer.status != 429 else "rate-limited"
            self.last_routes = list(post.routes)
            if answer.accepted:
                self.last_accepted = wall
            else:
                self.last_failure, self.last_error = wall, f"{answer.status or 'no answer'}: {answer.error}"
                self.seen_429 += answer.status == 429
            for route in post.routes:
                figures = self.by_route.setdefault(route, {"last_accepted": 0.0, "last_failure": 0.0,
                                                           "last_error": ""})
                if answer.accepted:
                    figures["last_accepted"] = wall
                else:
                    figures["last_failure"], figures["last_error"] = wall, self.last_error
            for ticket in {t for e in post.entries for t in e.tickets}:
                ticket.answer = answer
            if answer.accepted:
                self.failures = self.rate_limited = self.bare_500s = 0
                for entry, state in zip(post.entries, post.states):
                    owner.ledger.accepted(entry, state, wall)
                    saved.append((entry.route, entry.key, state, wall, 0.0))
                threads = self._follow_threads(post, answer, wall)
                log.info("Alert sent successfully to Rocket.Chat: %d (route=%s alerts=%s hook=%s took=%.3fs%s%s)",
                         answer.status, routes, post.names, self.hook, took, merged, threads,
                         extra=self._fields("delivered", post, outcome))
            elif answer.transient:
                for entry in post.entries:
                    entry.inflight = None
                    owner.ledger.requeue(entry)
                self._retry_later(answer, now, routes, post)
            else:
                self._refused(post, answer, routes, took, merged)
            owner.cond.notify_all()
            opened, ended = owner.thread_changes()
        owner.store.save_states(saved)
        owner.store.save_threads(opened, ended)

    def _follow_threads(self, post: Post, answer: Answer, wall: float) -> str:
        """Open, move, extend or end the threads of an accepted post's groups; return what the log line
        says of them (the lock is held)."""
        owner = self.owner
        if not owner.settings.threads:
            return ""
        if not answer.separate or not answer.ids:
            if self.threads_supported is None:
                log.info("Rocket.Chat returned no message id for a post to %s: it is too old for separateResponse "
                         "(Rocket.Chat 7.x after 7.8 and later return one), so posts to this hook do not use "
                         "threads", self.hook)
            self.threads_supported = False
            return ""
        self.threads_supported = True
        said = []
        for part in post.parts:
            firing = [e for e in part.entries if e.posted is not None and e.posted.status == FIRING]
            keys = [f"{e.route}/{e.key}" for e in firing]
            started = min((e.posted.starts for e in firing if e.posted and e.posted.starts), default=0.0)
            thread = part.thread
            if part.reply and thread is not None:
                thread.last_post = wall
                thread.alerts.update(keys)
                owner.metrics.thread_replies.inc(route=part.entries[0].route)
                said.append(f" thread={thread.root}")
            elif firing:
                thread = owner.threads.anchor(self.hook_id, part.scope or part.group, answer.ids[0], started, wall, keys)
            if thread is not None and _all_resolved(owner.ledger, thread):
                owner.end_thread(thread)
            elif thread is not None:
                owner.touch_thread(thread)
        return "".join(dict.fromkeys(said))

    def _refused(self, post: Post, answer: Answer, routes: str, took: float, merged: str) -> None:
        """Settle a post Rocket.Chat refused: shorten or split it and try again, or fail its requests."""
        owner = self.owner
        for entry in post.entries:
            entry.inflight = None
        text = str(post.message.get("text", ""))
        special = mentions.special(text)
        if mentions.REFUSAL in answer.error and special:
            self._special_refused(post, special, answer)
            return
        sender = [key for key in IMPERSONATE_KEYS if post.message.get(key)]
        if IMPERSONATE_REFUSAL in answer.error and sender:
            self._impersonate_refused(post, sender, answer)
            return
        if "error-message-size-exceeded" in answer.error and message.units(text) > MIN_TEXT:
            self.text_limit = max(MIN_TEXT, message.units(text) // 2)
            owner.metrics.refusals.inc(route=post.routes[0], reason="message_too_long")
            log.warning("Rocket.Chat refused a post to %s as too long (%d UTF-16 units of text; its "
                        "Message_MaxAllowedSize is lower): posting it again with at most %d",
                        self.hook, message.units(text), self.text_limit)
            return
        whole = answer.bad_token or answer.status == 404 or any(w in answer.error for w in _WHOLE_POST_REFUSALS)
        if len(post.entries) > 1 and not whole:
            half = math.ceil(len(post.entries) / 2)
            for entry in post.entries:
                entry.max_batch = min(entry.max_batch or half, half)
            log.warning("Rocket.Chat refused a post of %d alerts for route %s (%s %s): posting them in smaller "
                        "parts so that the one it refuses does not hold back the others",
                        len(post.entries), routes, answer.status, answer.error)
            return
        reason = "bad_token" if answer.bad_token or answer.status == 404 else "invalid_message"
        for route in post.routes:
            owner.metrics.refusals.inc(route=route, reason=reason)
        log.error("Rocket.Chat refused the post for route %s: %s %s (alerts=%s hook=%s took=%.3fs%s); %s",
                  routes, answer.status, answer.error, post.names, self.hook, took, merged,
                  delivery.advice(owner.settings.routes.get(post.routes[0]) or Route(post.routes[0], self.url),
                                  answer, next((part.channel for part in post.parts if part.channel), ""),
                                  owner.settings.channel_label), extra=self._fields("refused", post, "refused"))
        for entry in post.entries:
            owner.ledger.refused(entry, answer)

    def _special_refused(self, post: Post, special: Tuple[str, ...], answer: Answer) -> None:
        """Leave @here and @all out of this hook's posts for a while, the refused one first (the lock is
        held): its alerts are posted again without them, so that a mention never costs an alert."""
        owner = self.owner
        self.special_refused_until = owner.clock() + MENTION_RETRY
        asked = [part for part in post.parts if mentions.special(" ".join(part.mentions))]
        routes = list(dict.fromkeys(part.entries[0].route for part in asked)) or post.routes
        for route in routes:
            owner.metrics.mention_refusals.inc(route=route)
        said = " and ".join(f"@{name}" for name in special)
        # Rocket.Chat's answer does not say which of the two permissions is missing.
        lacking = " or the ".join(mentions.permissions(special))
        configured = [owner.settings.routes.get(route) or Route(route, "") for route in routes]
        sources = [f"{key_prefix(r.receiver)}MENTION_{r.severity.upper()}" for r in configured if mentions.special(r.mention)]
        if any(mentions.special(e.item.alert.annotations.get(mentions.ANNOTATION, ""))
               for part in asked for e in part.entries if e.item is not None):
            sources.append(f"the alerts' {mentions.ANNOTATION} annotation")
        log.error("Rocket.Chat refused a post to %s: %s %s: the integration's user may not mention %s (it lacks the "
                  "%s permission); posting it again without %s (alerts=%s route=%s), and leaving %s out of posts to "
                  "this hook for %s or until a reload; to have %s notify, grant %s to the integration's user (or its "
                  "bot role) in Rocket.Chat, Administration > Workspace > Permissions%s",
                  self.hook, answer.status, answer.error, said.replace(" and ", " or "), lacking, said, post.names,
                  ",".join(routes), said, message.duration(MENTION_RETRY), said,
                  " and ".join(mentions.permissions(special)),
                  f", or take {said} out of {' and '.join(sources)}" if sources else "",
                  extra=self._fields("mention-refused", post, "refused"))

    def _impersonate_refused(self, post: Post, sender: List[str], answer: Answer) -> None:
        """Leave the sender's name and avatar out of this hook's posts for a while, the refused one first
        (the lock is held): its alerts are posted again without them, so that a name never costs an alert."""
        owner = self.owner
        self.impersonate_refused_until = owner.clock() + IMPERSONATE_RETRY
        for route in post.routes:
            owner.metrics.impersonate_refusals.inc(route=route)
        keys = " and ".join(sender)
        configured = [owner.settings.routes.get(route) or Route(route, "") for route in post.routes]
        # A hook set's name is its own ROCKETCHAT_USERNAME, else the default set's.
        sources = list(dict.fromkeys(
            "ROCKETCHAT_USERNAME" if not r.receiver or r.username == owner.settings.username
            else f"{key_prefix(r.receiver)}ROCKETCHAT_USERNAME" for r in configured))
        log.error("Rocket.Chat refused a post to %s: %s %s: the integration's user may not post under another name "
                  "or avatar (it lacks the message-impersonate permission); posting it again without %s (alerts=%s "
                  "route=%s), and leaving %s out of posts to this hook for %s or until a reload; to have posts "
                  "show that name, grant message-impersonate to a role of the user the integration posts as (its "
                  "'Post as' setting) in Rocket.Chat, Administration > Workspace > Permissions > message-impersonate, "
                  "or unset %s",
                  self.hook, answer.status, answer.error, keys, post.names, ",".join(post.routes), keys,
                  message.duration(IMPERSONATE_RETRY), " or ".join(sources),
                  extra=self._fields("impersonate-refused", post, "refused"))

    def _retry_later(self, answer: Answer, now: float, routes: str, post: Post) -> None:
        """Hold the hook as long as Rocket.Chat asks, or back off."""
        reason = "rate_limited" if answer.status == 429 else "no_answer" if answer.status == 0 else "server_error"
        for route in routes.split(","):
            self.owner.metrics.retries.inc(route=route, reason=reason)
            if answer.status == 429:
                self.owner.metrics.waits.inc(route=route, reason="rocketchat_429")
        if answer.status == 429:
            self.rate_limited += 1
            asked = delivery.rate_limit_wait(answer, self.owner.wall())
            window = self.owner.settings.rate_limit[1] or 60.0
            delay = asked if asked is not None else window
            # Asked again and again: a limit lower than ours, or a clock that disagrees. Back off.
            delay = max(delay, min(window, 2.0 ** (self.rate_limited - 1)))
            self._hold(now + delay, f"Rocket.Chat's rate limit (429): {answer.error}")
            log.warning("Rate limited by Rocket.Chat on route %s (hook=%s): waiting %.1fs%s", routes, self.hook,
                        delay, " as it asked" if asked is not None else " (no wait given; one window)",
                        extra=self._fields("rate-limited", post, "rate-limited"))
            return
        self.failures += 1
        delay = min(BACKOFF_CAP, BACKOFF_FIRST * BACKOFF_FACTOR ** (self.failures - 1))
        delay *= self.owner.rng.uniform(0.8, 1.2)
        cause = f"{answer.status or 'no answer'}: {answer.error}"
        self._hold(now + delay, f"Rocket.Chat is failing ({cause}); retrying")
        log.warning("Post to route %s failed (%s); retrying in %.2fs (attempt %d, hook=%s)",
                    routes, cause, delay, self.failures + 1, self.hook, extra=self._fields("retrying", post, "failed"))
        if answer.status == 500 and not answer.bad_token:
            self.bare_500s += 1
            if self.bare_500s == BARE_500_ALERT:
                route = routes.split(",")[0]
                self.owner.metrics.refusals.inc(route=route, reason="bad_token")
                log.error("Rocket.Chat answered %d posts in a row to %s with 500: Rocket.Chat 7.x and later answer "
                          "a wrong token so; %s", BARE_500_ALERT, self.hook,
                          delivery.advice(self.owner.settings.routes.get(route) or Route(route, self.url),
                                          answer._replace(status=404)))
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


def _alert_resolved(ledger: Ledger, key: str, posting: Dict[str, State]) -> bool:
    state = posting.get(key)
    if state is None:
        route, _, alert = key.rpartition("/")  # a route's name may hold a / (db/critical), a key not
        entry = ledger.entries.get((route, alert))
        state = entry.posted if entry is not None else None
    return state is None or state.status == RESOLVED


def _all_resolved(ledger: Ledger, thread: Thread, posting: Optional[Dict[str, State]] = None) -> bool:
    """Return whether every alert announced in `thread` has resolved (counting the states being posted)."""
    return all(_alert_resolved(ledger, key, posting or {}) for key in thread.alerts)


def _resolution_note(ledger: Ledger, thread: Thread, entries: List[Entry]) -> str:
    """Return the line that says how long the incident lasted, when this reply resolves its last alert."""
    posting = {f"{e.route}/{e.key}": e.known for e in entries}
    if not thread.alerts or not _all_resolved(ledger, thread, posting):
        return ""
    ends = [e.known.ends for e in entries if e.known.status == RESOLVED and e.known.ends]
    if not ends or not thread.started or max(ends) < thread.started:
        return "Incident resolved."
    return f"Incident resolved after {message.duration(max(ends) - thread.started)}."


class Deliverer:
    """The ledger of alert states and the couriers that post them; requests wait here for their states."""

    def __init__(self, settings: Settings, transport: Transport = delivery.post,
                 clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time,
                 rng: Optional[random.Random] = None, metrics: Optional[Metrics] = None,
                 store: Optional[state_store.Store] = None) -> None:
        self.settings = settings
        self.transport = transport
        self.metrics = metrics or Metrics()
        self.clock = clock
        self.wall = wall
        self.rng = rng or random.Random()
        self.cond = threading.Condition()
        self.ledger = Ledger()
        self.store = store if store is not None else self.open_store(settings)
        self.store.remember_from(self.memory)
        now = wall()
        self.ledger.posted.restore(self.store.load_runs())
        for route, key, state, posted_at, confirmed_at in self.store.load_states():
            self.ledger.restore(route, key, state, posted_at, confirmed_at, now)
        self._runs_saved = self.ledger.posted.version
        self.threads = Threads(settings.thread_ttl)
        self.threads.restore(self.store.load_threads(now - settings.thread_ttl))
        self._opened: Dict[Tuple[str, str], Thread] = {}  # thread changes not yet saved
        self._ended: List[Tuple[str, str]] = []
        self.last_offer = 0.0
        self._couriers: Dict[str, Courier] = {}
        self.metrics.pending.read = self.pending_count
        self.metrics.state_bytes.read = self.store.size
        self.metrics.open_threads.read = lambda: len(self.threads)

    def open_store(self, settings: Settings) -> state_store.Store:
        """Return the state database of `settings` (STATE_DIR), opened; it counts its errors in the metrics."""
        return state_store.Store(settings.state_dir, self.wall, settings.thread_ttl,
                                 on_error=lambda: self.metrics.state_errors.inc(),
                                 on_drop=lambda count: self.metrics.state_writes_dropped.inc(count))

    def memory(self) -> Tuple[List[state_store.Row], list, list]:
        """Return the posted alert states, the open threads and the compact record of posted states held in
        memory, as the state database keeps them."""
        with self.cond:
            states = [(e.route, e.key, e.posted, e.posted_at, e.confirmed_at)
                      for e in self.ledger.entries.values() if e.posted is not None]
            threads = [to_row(t) for t in self.threads.open.values()]
            runs = list(self.ledger.posted.runs)
        return states, threads, runs

    def use_store(self, store: state_store.Store) -> None:
        """Keep the state in `store` from now on (a reload changed STATE_DIR): what is in memory is written
        into it, and the database used until now is closed."""
        old, self.store = self.store, store
        store.remember_from(self.memory)
        self.metrics.state_bytes.read = store.size
        states, threads, runs = self.memory()
        store.save_states(states)
        store.save_threads(threads, [])
        store.save_runs(runs)
        for hook, sent in list(old.posts.items()):
            for sent_at in list(sent):
                store.record_post(hook, sent_at)
        # Closing waits for the old database's queue: not on the thread that reloads, which serves.
        threading.Thread(target=old.close, name="state closer", daemon=True).start()

    def reconfigure(self, settings: Settings, transport: Optional[Transport] = None) -> None:
        """Swap in new settings (and transport): waiting states go to their routes' new URLs, and the
        couriers of URLs no longer used end after their current post.

        The waiting states of a route that is gone (its hook set left RECEIVERS) stay where they are, unposted:
        the requests waiting for them are answered 503 at their deadline, and Alertmanager's retry meets the
        404 of an unknown hook set. They are posted if the set comes back and a retry brings them again, and
        are dropped after PENDING_MAX_AGE otherwise, as any state no request asks for."""
        with self.cond:
            for name, owed in self.ledger.owed.items():
                if owed and name not in settings.routes and name in self.settings.routes:
                    log.warning("Route %s is gone from the configuration with %d alert states waiting to be posted "
                                "to it: they are not posted unless its hook set comes back and Alertmanager sends "
                                "them again, and are dropped after %gs", name, len(owed), PENDING_MAX_AGE)
            self.settings = settings
            self.threads.ttl = settings.thread_ttl
            self.store.thread_ttl = settings.thread_ttl
            if transport is not None:
                self.transport = transport
            used = {route.url for route in settings.routes.values() if route.url}
            for url in [u for u in self._couriers if u not in used]:
                self._couriers.pop(url).close()
            for courier in self._couriers.values():
                courier.reconfigure(settings)
            for route in settings.routes.values():
                if route.url and self.ledger.owed.get(route.name):
                    self._courier(route.url)
            self.cond.notify_all()

    def describe_state(self) -> str:
        """Return where the alert states are kept and how much of them a start found."""
        with self.cond:
            alerts, threads = len(self.ledger), len(self.threads)
        if self.store.path is None or self.store.failed:
            return ("Alert states are kept in memory only (STATE_DIR is not set, or its database failed): a "
                    "restart may post again what was posted")
        return f"Alert states are kept in {self.store.path}: {alerts} alerts and {threads} open threads restored"

    def routes_of(self, url: str) -> List[str]:
        """Return the names of the routes that post to `url` (the lock is held)."""
        return [route.name for route in self.settings.routes.values() if route.url == url]

    def deliver(self, batches: List[Tuple[Route, Tuple[str, ...], List[Item]]], deadline: float) -> List[Result]:
        """Bring each route's alert states, wait until they are posted or `deadline` comes, and return
        what became of each route's."""
        tickets: List[Tuple[Route, Ticket]] = []
        now = self.wall()
        with self.cond:
            self.last_offer = self.clock()
            # Alertmanager sends a whole group again when it changes: the alerts in it that did not
            # change are not a reminder then. Only a notification without news (or that says so) is.
            everything = [item for _, _, items in batches for item in items]
            reason = everything[0].context.reason if everything else ""
            if reason:
                reminder = reason == REMINDER_REASON
            else:
                reminder = not any(self.ledger.news(item, now, self.settings.dedup_window) for item in everything)
            for route, names, items in batches:
                ticket = Ticket(route.name, names)
                tickets.append((route, ticket))
                if self.ledger.owed_count() + len(items) > QUEUE_LIMIT:
                    ticket.done.set()  # answered pending below: Alertmanager retries when there is room
                    continue
                copies = [item.alert.name for item in items
                          if self.ledger.offer(item, ticket, now, self.settings.dedup_window, reminder).copy]
                if copies:
                    self.metrics.duplicates.inc(len(copies), route=route.name)
                    log.info("Already posted: route=%s alerts=%s; not posting them again", route.name,
                             delivery.one_line(",".join(copies)))
                if not ticket.waiting:
                    ticket.done.set()
                elif route.url:
                    self._courier(route.url)
            self.cond.notify_all()
        for _, ticket in tickets:
            ticket.done.wait(max(0.0, deadline - self.clock()))
        results = []
        with self.cond:
            for route, ticket in tickets:
                results.append(self._result(route, ticket))
            acknowledged = all(result.ok for result in results)
            now = self.wall()
            confirmed = []
            for _, ticket in tickets:
                self.ledger.release(ticket, now, acknowledged)
                if acknowledged:
                    confirmed.extend((e.route, e.key, e.posted, e.posted_at, e.confirmed_at)
                                     for e, state in ticket.carried if e.posted == state and e.confirmed_at == now)
            runs = self._changed_runs()
        self.store.save_states(confirmed)
        if runs is not None:
            self.store.save_runs(runs)
        return results

    def _changed_runs(self) -> Optional[list]:
        """Return the ledger's compact record of posted states when it changed since last saved (the lock is
        held)."""
        if self.ledger.posted.version == self._runs_saved:
            return None
        self._runs_saved = self.ledger.posted.version
        return list(self.ledger.posted.runs)

    def _result(self, route: Route, ticket: Ticket) -> Result:
        if ticket.failure is not None:
            return Result(route.name, ticket.names, "failed", ticket.failure)
        if not ticket.carried:
            return Result(route.name, ticket.names, "pending", None,
                          f"too many alert states are waiting to be posted ({QUEUE_LIMIT})", 10.0)
        if ticket.done.is_set() and not ticket.waiting:
            return Result(route.name, ticket.names, "delivered" if ticket.posted_any else "already-delivered",
                          ticket.answer)
        courier = self._couriers.get(route.url)
        if courier is None:
            return Result(route.name, ticket.names, "pending", ticket.answer, "no courier for this route", 1.0)
        reason, retry_in = courier.status(self.clock())
        return Result(route.name, ticket.names, "pending", ticket.answer, reason, retry_in)

    def _courier(self, url: str) -> Courier:
        courier = self._couriers.get(url)
        if courier is None:
            courier = self._couriers[url] = Courier(url, self)
        return courier

    def end_thread(self, thread: Thread) -> None:
        """Forget an ended thread (the lock is held)."""
        self.threads.end(thread)
        self._opened.pop((thread.hook, thread.group), None)
        self._ended.append((thread.hook, thread.group))

    def touch_thread(self, thread: Thread) -> None:
        """Note a thread opened or changed, to be saved (the lock is held)."""
        self._opened[(thread.hook, thread.group)] = thread

    def thread_changes(self) -> Tuple[list, List[Tuple[str, str]]]:
        """Return the threads opened or changed and those ended since the last call, to save (the lock is
        held)."""
        opened = [to_row(t) for t in self._opened.values()]
        ended = self._ended
        self._opened, self._ended = {}, []
        return opened, ended

    def expire(self) -> None:
        """Drop the owed states that no request has carried for PENDING_MAX_AGE (the lock is held)."""
        for entry, state in self.ledger.expire(self.wall(), PENDING_MAX_AGE):
            log.warning("Dropped the waiting %s state of alert %s (route %s): no notification has carried it "
                        "for %gs, so Alertmanager no longer asks for it", state.status,
                        delivery.one_line(entry.name), entry.route, PENDING_MAX_AGE,
                        extra=logs.fields("given-up", route=entry.route, alerts=entry.name, outcome="dropped",
                                          group_key=entry.item.context.group if entry.item else ""))

    def pending_count(self) -> int:
        with self.cond:
            return self.ledger.owed_count()

    def snapshot(self) -> Dict[str, object]:
        """Return, read-only, each route's hook and what is owed to it, and each hook's courier's state."""
        with self.cond:
            now = self.clock()
            routes = {route.name: (route.url, len(self.ledger.owed.get(route.name) or ()))
                      for route in self.settings.routes.values()}
            hooks = {url: courier.snapshot(now) for url, courier in self._couriers.items()}
            threads = len(self.threads)
            unresolved = self._unresolved(self.wall(), self.settings.thread_ttl / 2)
        return {"routes": routes, "hooks": hooks, "threads": threads, "state_bytes": self.store.size(),
                "unresolved": unresolved, "unresolved_after": self.settings.thread_ttl / 2}

    def _unresolved(self, wall: float, age: float) -> Dict[str, Dict[str, float]]:
        """Return, per route that has never had a resolution posted, its open threads whose incident started more
        than `age` seconds ago, and the oldest one's start (the lock is held): what a route whose Alertmanager
        receiver does not send resolved notifications shows."""
        found: Dict[str, Dict[str, float]] = {}
        for thread in self.threads.started_before(wall - age, wall):
            for route in {key.rpartition("/")[0] for key in thread.alerts}:  # a route's name may hold a /, a key not
                figures = found.setdefault(route, {"count": 0, "oldest": thread.started})
                figures["count"] += 1
                figures["oldest"] = min(figures["oldest"], thread.started)
        if found:
            for (route, _), entry in self.ledger.entries.items():
                if route in found and entry.posted is not None and entry.posted.status == RESOLVED:
                    del found[route]
        return found

    def close(self) -> None:
        with self.cond:
            for courier in self._couriers.values():
                courier.close()
            self.cond.notify_all()
            self.ledger.posted.seal()  # the records not yet sealed would be lost otherwise
            runs = self._changed_runs()
        if runs is not None:
            self.store.save_runs(runs)
        self.store.close()
