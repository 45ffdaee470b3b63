"""What a column means to a dashboard: its role and its unit.

Every column of a :class:`bpfnb.codec.plan.Codec` has a *role*, one of :data:`ROLES`,
and may have a *unit* (``"ns"``, ``"us"``, ``"ms"``, ``"bytes"``). The dashboard reads
them to decide which columns get totals and rates (``counter`` and ``duration``), which
are shown as times (``timestamp``) and which are labels (``id``, ``enum``, ``text``...).

Where a role comes from, first match wins:

1. the column's decoder (a typedef of ``bpfnb/types.h`` or one chosen with
   :meth:`Codec.with_decoders`): ``bpfnb_ktime_t`` is a timestamp, ``bpfnb_ns_t`` a
   duration in ns, ``bpfnb_bytes_t`` a counter in bytes, ``bpfnb_open_flags_t`` flags...;
2. the column's C kind: ``char[N]`` is text, ``u8[N]`` bytes, an enum an enum, a
   pointer an address, ``_Bool`` other;
3. for plain numbers only, the field's own name, through the one table
   :data:`TOKEN_ROLES` below (see :func:`name_role`): ``pid`` is an id, ``delta_ns`` a
   duration in ns, ``flags`` flags, ``saddr`` an address, ``count`` a counter;
4. otherwise integers are counters and other numbers ``other``.

Roles describe the type, not the place: a key column that comes out as a ``counter``
is still a key (see :func:`bpfnb.codec.frames.frame_roles`, which makes key counters
ids).

Example
-------
>>> name_role("delta_ns")
('duration', 'ns')
>>> name_role("ppid"), name_role("rx_bytes"), name_role("comm")
(('id', None), ('counter', 'bytes'), (None, None))
"""

from __future__ import annotations

import re

ROLES = (
    "counter",
    "timestamp",
    "id",
    "flags",
    "duration",
    "text",
    "address",
    "enum",
    "bytes",
    "other",
)
"""Every role a column can have."""

UNITS = ("ns", "us", "ms", "bytes")
"""Every unit a column can have."""

TOKEN_ROLES: tuple[tuple[str, str], ...] = (
    # (role, regular expression matched against a whole token of the field name)
    ("duration", r"lat|latency|delta|dur|duration|elapsed|runtime|wait|delay|spent|slack"),
    ("timestamp", r"ts|tstamp|timestamp|time|ktime|start|end|begin|stop|when|seen"),
    ("flags", r"\w*flags?|\w*mask|\w*mode|prot|perms?|opts|options"),
    ("address", r"\w*addr|ip|ipv4|ipv6|ip4|ip6|v4|v6|ptr|pc|ksym|sym|caller|func"),
    (
        "id",
        r"\w*pid|\w*tid|\w*gid|\w*uid|id|ids|cpu|fd|ino|inode|dev|cgroup|cgid|stack|"
        r"stackid|kstack|ustack|syscall|nr|sc|irq|sig|signal|\w*port|ifindex|ifidx|netns|"
        r"mntns|idx|index|slot|key|bucket",
    ),
    (
        "enum",
        r"type|proto|protocol|family|af|state|op|opcode|cmd|kind|reason|err|errno|error|"
        r"status|code|policy|class|level|prio|priority",
    ),
    ("other", r"ret|retval|rc|res|result|version|ver"),
    (
        "counter",
        r"count|counts|cnt|calls|hits|n|num|total|packets|pkts|bytes|nbytes|size|len|"
        r"length|sum|events|misses|drops|dropped|errors|errs|retries|ops|reads|writes|"
        r"allocs|frees|pages|sectors|blocks|rx|tx|sent|received|queued|depth",
    ),
)
"""The one table of name heuristics: a field name's tokens (split at ``_``) -> role."""

UNIT_TOKENS: dict[str, str] = {
    "ns": "ns",
    "nsec": "ns",
    "nsecs": "ns",
    "us": "us",
    "usec": "us",
    "usecs": "us",
    "ms": "ms",
    "msec": "ms",
    "msecs": "ms",
    "bytes": "bytes",
    "nbytes": "bytes",
}
"""A field name's last token -> its unit (``delta_ns``, ``rx_bytes``)."""

_TIME_UNITS = ("ns", "us", "ms")
_COMPILED = tuple((role, re.compile(rf"(?:{pattern})")) for role, pattern in TOKEN_ROLES)


def _token_role(token: str) -> str | None:
    """The role of one token; ``saddr4``/``daddr128`` are tried without their digits too."""
    for candidate in dict.fromkeys((token, token.rstrip("0123456789"))):
        if not candidate:
            continue
        for role, pattern in _COMPILED:
            if pattern.fullmatch(candidate):
                return role
    return None


def name_role(column: str) -> tuple[str | None, str | None]:
    """Role and unit a plain number's name suggests, ``(None, None)`` when it says nothing.

    Only the column's own name counts (``in.delta_ns`` -> ``delta_ns``, ``arr[3]`` ->
    ``arr``). Its tokens are matched against :data:`TOKEN_ROLES`; the last token with a
    role wins (``pid_count`` is a counter), except that any duration token makes a
    duration (``wait_time``). A time unit suffix (``_ns``, ``_us``, ``_ms``) turns a name
    without a role, or a counter, into a duration (``total_ns``).

    Parameters
    ----------
    column : str
        A codec column name.

    Returns
    -------
    tuple
        ``(role or None, unit or None)``.
    """
    own = column.rsplit(".", 1)[-1]
    own = own.split("[", 1)[0].lower()
    tokens = [t for t in own.split("_") if t]
    if not tokens:
        return None, None
    unit = UNIT_TOKENS.get(tokens[-1])
    if unit in _TIME_UNITS:
        tokens = tokens[:-1]
    roles = [_token_role(t) for t in tokens]
    role: str | None = None
    if "duration" in roles:
        role = "duration"
    else:
        for r in reversed(roles):
            if r is not None:
                role = r
                break
    if unit in _TIME_UNITS and role in (None, "counter"):
        role = "duration"
    return role, unit
