"""The Alertmanager versions whose template behaviour rcwebhook follows (TEMPLATE_COMPAT).

"0.28" (the default; Debian 13) or "0.25" (Debian 12): 0.28 adds trimSpace, date, tz, since and
humanizeDuration, prints a KV and Pairs as `a=1, b=2` (their String methods) and knows {{else with}}
and range over an integer; its regular expressions (Go 1.24's) know (?<name>...), 0.25's (Go 1.19's)
only (?P<name>...). Later levels only add functions (functions.FUNCTIONS_SINCE): 0.30 safeUrl,
urlUnescape and toJson; 0.32 list, append and dict; 0.33 now; 0.34 toDate, mustToDate, base64encode
and base64decode.

Nothing else is imported with this module: the settings check a level without loading the template
language.
"""

from __future__ import annotations

from typing import Tuple

COMPATS = ("0.25", "0.28", "0.30", "0.32", "0.33", "0.34")
DEFAULT_COMPAT = "0.28"


def level(compat: str) -> Tuple[int, ...]:
    """A level as numbers, to compare: (0, 28) for "0.28"."""
    return tuple(int(part) for part in compat.split("."))
