"""Templates in rcwebhook's messages: TEMPLATE_FILES holds `define`s; TEMPLATE_TEXT,
TEMPLATE_ATTACHMENT_TITLE and TEMPLATE_ATTACHMENT_TEXT name the ones that render the headline,
each attachment's title and each attachment's text.

Invalid templates are refused when the configuration loads (exit 78, file:line:col). At run
time a template that fails is logged with its name and position, counted in
rcwebhook_template_errors_total{part}, and that part of the message is the built-in one.

The templates of one message share a CPU-time budget (TEMPLATE_CPU_BUDGET): a message whose
templates use it up is rendered whole by the built-in rendering, counted in
rcwebhook_template_cpu_budget_exceeded_total{part}, and the template named in one ERROR per
template until the next reload.
"""

from __future__ import annotations

import functools
import glob as globmod
import logging
import os
import re
from pathlib import Path
import threading
import time
from types import MappingProxyType
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from ..amtemplate.data import KV, Alert, Alerts, DataError, MessageData, local_of, parse_time
from ..amtemplate.functions import FUNCTIONS_SINCE
from ..gotemplate.template import BudgetError, TemplateError
from ..config.settings import Settings
from ..operations.metrics import Counter, register
from .render import TITLE_LIMIT, common_entries, truncate, truncate_units

log = logging.getLogger("rcwebhook")

KEYS = {"TEMPLATE_TEXT": "text", "TEMPLATE_ATTACHMENT_TITLE": "title", "TEMPLATE_ATTACHMENT_TEXT": "attachment_text"}
_KEY_OF = {part: key for key, part in KEYS.items()}
ERRORS = Counter("rcwebhook_template_errors_total",
                 "Template executions that failed (the built-in rendering was used), by message part.",
                 ["part"], initial=[{"part": part} for part in KEYS.values()])
OVER_BUDGET = Counter("rcwebhook_template_cpu_budget_exceeded_total",
                      "Messages whose templates used up TEMPLATE_CPU_BUDGET (the built-in rendering was used), "
                      "by the message part whose template was running.",
                      ["part"], initial=[{"part": part} for part in KEYS.values()])
register(ERRORS, OVER_BUDGET)  # on /metrics from now on: this module loads when templates are configured
TEXT_UNITS = 4000  # an attachment's text at most (the headline has the message's own limit)
MAX_STEPS = 200_000  # per part of a message: a runaway template fails fast and the built-in part is used
MAX_OUTPUT = 100_000  # characters per part, before the cut to Rocket.Chat's limits
FAILED = "template %r (%s) failed, the built-in %s is used: %s"  # what --render tells as an error


class OverBudget(Exception):
    """A message's templates used up their CPU-time budget: the whole message is the built-in one."""


class Templates:
    """The templates of TEMPLATE_FILES and which one renders each part of a message."""

    def __init__(self, tmpl: Any, names: Dict[str, str]) -> None:
        self.tmpl, self.names = tmpl, names
        self._over_budget: set = set()  # the templates said to be over budget (a reload builds new Templates)
        self._lock = threading.Lock()

    def render(self, part: str, data: Any, cpu_deadline: Optional[float] = None, cpu_budget: float = 0.0
               ) -> Optional[str]:
        """The text of `part` for `data`, or None when no template is set for it or it failed; raise
        OverBudget past `cpu_deadline` (on the time.thread_time() clock; `cpu_budget` is what it allowed)."""
        name = self.names.get(part)
        if not name:
            return None
        try:
            return self.tmpl.execute(name, data, max_steps=MAX_STEPS, max_output=MAX_OUTPUT,
                                     cpu_deadline=cpu_deadline)
        except BudgetError:
            OVER_BUDGET.inc(part=part)
            with self._lock:
                first = name not in self._over_budget
                self._over_budget.add(name)
            if first:
                log.error("template %r (%s) used up TEMPLATE_CPU_BUDGET (%gs of CPU time for a message) "
                          "rendering a message, which is rendered by the built-in rendering instead; this is said "
                          "once per template until the next reload and counted in "
                          "rcwebhook_template_cpu_budget_exceeded_total: make the template do less (loops over "
                          "large values, regular expressions on long labels) or raise TEMPLATE_CPU_BUDGET",
                          name, _KEY_OF[part], cpu_budget)
            raise OverBudget(name) from None
        except TemplateError as exc:
            ERRORS.inc(part=part)
            log.warning(FAILED, name, _KEY_OF[part], part.replace("_", " "), exc)
            return None

    def parts(self, alerts: Sequence[Any], shown: int, external_url: str, text_limit: int, receiver: str = "",
              group_labels: Mapping[str, str] = MappingProxyType({}), route: str = "",
              cpu_budget: Optional[float] = None, cpu_deadline: Optional[float] = None
              ) -> Tuple[Optional[str], List[Tuple[Optional[str], Optional[str]]]]:
        """The message's text and, for each of the first `shown` alerts, its attachment's (title, text) as
        the templates render them, cut to Rocket.Chat's limits: None for a part without a template or
        whose template failed (the built-in part is used), "" for an attachment text left empty. All None (the
        built-in message) when they take more than `cpu_budget` seconds of this thread's CPU time together, or
        run past `cpu_deadline` (time.thread_time()) when given: a post's groups share one budget."""
        deadline = cpu_deadline if cpu_deadline is not None else \
            time.thread_time() + cpu_budget if cpu_budget is not None else None
        render = functools.partial(self.render, cpu_deadline=deadline, cpu_budget=cpu_budget or 0.0)
        group = KV(group_labels or {})
        items = [_alert(a) for a in alerts]
        try:
            text = whole = None
            if "text" in self.names:
                whole = _data(items, external_url, receiver, group, route)
                text = render("text", whole)
                text = truncate_units(text, text_limit) if text is not None and text.strip() else None
            attachments: List[Tuple[Optional[str], Optional[str]]] = []
            if "title" in self.names or "attachment_text" in self.names:
                for item in items[:shown]:
                    # a message of one alert: its attachment's data is the message's
                    data = whole if whole is not None and len(items) == 1 else \
                        _data([item], external_url, receiver, group, route)
                    title, body = render("title", data), render("attachment_text", data)
                    title = truncate(" ".join(title.split()), TITLE_LIMIT) if title and title.strip() else None
                    if body is not None:
                        body = truncate_units(body.strip("\n"), TEXT_UNITS) if body.strip() else ""
                    attachments.append((title, body))
            return text, attachments
        except OverBudget:  # said and counted where it happened: the whole message is the built-in one
            return None, []


def _data(items: List[Alert], external_url: str, receiver: str, group: KV,
          route: str = "") -> MessageData:
    # Templates cannot change their data (every function returns new values): label sets are shared.
    if len(items) == 1:
        common_labels, common_annotations = items[0].Labels, items[0].Annotations
    else:
        common_labels = KV(common_entries([a.Labels for a in items]))
        common_annotations = KV(common_entries([a.Annotations for a in items]))
    return MessageData(
        Route=route, Severity=route.rpartition("/")[2],
        Receiver=receiver, Status="firing" if any(a.Status == "firing" for a in items) else "resolved",
        Alerts=Alerts(items), GroupLabels=group, CommonLabels=common_labels,
        CommonAnnotations=common_annotations, ExternalURL=external_url,
    )


def _alert(a: Any) -> Alert:
    return Alert(Status=a.status, Labels=KV(a.labels), Annotations=KV(a.annotations), StartsAt=_time(a.starts_at),
                 EndsAt=_time(a.ends_at), GeneratorURL=a.generator_url, Fingerprint=a.fingerprint)


_ZERO_TIME = "0001-01-01T00:00:00Z"  # Go's zero time.Time: what an unset or unreadable time is


@functools.lru_cache(maxsize=1024)  # the same start times come again and again; a GoTime never changes
def _time(text: str) -> Any:
    try:
        return parse_time(text or _ZERO_TIME)
    except DataError:
        return parse_time(_ZERO_TIME)


def load(settings: Settings, errors: List[str]) -> Optional[Templates]:
    """Return the templates TEMPLATE_FILES holds and the TEMPLATE_* keys name, compiled, or None when there are
    none or they cannot be used; every problem is added to `errors`, once per cause. Relative globs are read
    from the env file's directory, as Alertmanager reads `templates:` from its configuration file's; times'
    .Local is in TIMEZONE; TEMPLATE_COMPAT is the Alertmanager followed."""
    files = settings.template_files
    if not files:
        return None
    names = {part: getattr(settings, key.lower()) for key, part in KEYS.items() if getattr(settings, key.lower())}
    source, compat = settings.source, settings.template_compat
    base = str(Path(source).parent) if source and Path(source).is_file() else ""  # not /dev/null's /dev
    written_globs = [g for g in re.split(r"[\s,]+", files) if g]
    globs = [os.path.join(base, g) for g in written_globs]
    unmatched = [(written, pattern) for written, pattern in zip(written_globs, globs) if not globmod.glob(pattern)]
    errors.extend(f"TEMPLATE_FILES: no file matches {written!r}"
                  + (f" (read as {pattern!r}: relative to the env file's directory)" if pattern != written else "")
                  for written, pattern in unmatched)
    from ..amtemplate.render import load_globs
    try:
        tmpl = load_globs(globs, compat)
    except TemplateError as exc:
        # Go's own message, as amtool prints it (its positions are Go's: a parse error has no column)
        path = getattr(exc, "path", "")
        errors.append(f"TEMPLATE_FILES: {path + ': ' if path else ''}{exc}{_newer_function(str(exc), compat)}")
        return None
    except (OSError, UnicodeDecodeError) as exc:
        errors.append(f"TEMPLATE_FILES: {exc}")
        return None
    if unmatched:  # the templates the keys name may be in the files not found: that error says it all
        return None
    tmpl.local = local_of(settings.timezone)
    for tree in tmpl.trees.values():  # compiled here, once, not by the first message
        if tree.root is not None:
            tmpl.compile(tree)
    defined = sorted(n for n, t in tmpl.trees.items() if t.root is not None and n)
    for key, part in KEYS.items():
        if part in names and names[part] not in tmpl.trees:
            errors.append(f"{key}={names[part]!r}: no such template in TEMPLATE_FILES "
                          f"(defined: {', '.join(defined[:20]) or 'none'})")
    if not names:
        errors.append("TEMPLATE_FILES is set but none of TEMPLATE_TEXT, TEMPLATE_ATTACHMENT_TITLE, "
                      "TEMPLATE_ATTACHMENT_TEXT names a template to use")
    return Templates(tmpl, names)


def _newer_function(message: str, compat: str) -> str:
    """Return a hint when `message` refuses a function a later Alertmanager has (TEMPLATE_COMPAT), or ''."""
    found = re.search(r'function "(\w+)" not defined', message)
    since = FUNCTIONS_SINCE.get(found.group(1), ("", None))[0] if found else ""
    return f" ({found.group(1)} exists from Alertmanager {since} on: set TEMPLATE_COMPAT={since} or later, " \
           f"if your Alertmanager is that recent; it is {compat} now)" if since else ""
