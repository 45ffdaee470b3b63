"""What the kernel dropped, counted in the kernel: lost events and updates of full maps.

``bpfnb/events.h`` wraps the helpers that can drop data and counts each failure in the
hidden per-CPU hash ``bpfnb_drops``, keyed by the kernel's id of the map the helper was
given and a reason (:data:`LOST`: an event could not be submitted; :data:`FULL`: an
update found no room). :class:`DropCounter` reads that map; a program gives one to
each of its views, which also know their map's id.

:func:`uncounted_submissions` tells, from the object's code, when a submitting helper
is called where the wrapper cannot count it (so the view can say that its ``lost``
count is incomplete, and why).
"""

from __future__ import annotations

import re
import struct

import numpy as np

from bpfnb.errors import BpfKeyError
from bpfnb.kernel import bpf, cpus
from bpfnb.kernel.fd import OwnedFd
from bpfnb.object import code
from bpfnb.object.spec import ObjectSpec

#: The hidden map of ``bpfnb/events.h``.
DROPS_MAP = "bpfnb_drops"
#: Reasons (``BPFNB_DROP_*`` in ``bpfnb/events.h``).
LOST = 0
FULL = 1
_KEY = struct.Struct("<II")


class DropCounter:
    """Reads ``bpfnb_drops``: failures per (map id, reason), summed over CPUs.

    Parameters
    ----------
    fd : OwnedFd
        The ``bpfnb_drops`` map (shared with, and closed by, the program).
    """

    def __init__(self, fd: OwnedFd) -> None:
        self._fd = fd
        self._ncpus = cpus.possible_cpus()

    def count(self, map_id: int, reason: int) -> int:
        """How many times the kernel dropped data of map ``map_id`` for ``reason``."""
        try:
            raw = bpf.map_lookup(
                self._fd.get(), _KEY.pack(map_id, reason), 8 * self._ncpus, what=DROPS_MAP
            )
        except BpfKeyError:
            return 0
        return int(np.frombuffer(raw, dtype="<u8").sum())


_UNDEF_RE = re.compile(
    r"#\s*undef\s+(bpf_ringbuf_reserve|bpf_ringbuf_reserve_dynptr|bpf_ringbuf_output"
    r"|bpf_perf_event_output|bpf_map_update_elem|bpf_map_push_elem)\b"
)
_PAREN_RE = re.compile(
    r"\(\s*(bpf_ringbuf_reserve|bpf_ringbuf_reserve_dynptr|bpf_ringbuf_output"
    r"|bpf_perf_event_output)\s*\)\s*\("
)


def uncounted_submissions(spec: ObjectSpec, source: str = "") -> dict[str, str]:
    """Programs whose event submissions bpfnb cannot count, with the reason.

    A function that calls a submitting helper but never refers to ``bpfnb_drops``
    calls it without the ``bpfnb/events.h`` wrapper: through a function pointer, with
    the macro undefined or its name in parentheses, or in an object compiled without
    bpfnb's prelude.

    Returns
    -------
    dict
        Function name -> why its failed submissions are not counted (empty when every
        submission is counted).
    """
    out: dict[str, str] = {}
    named = _UNDEF_RE.search(source) or _PAREN_RE.search(source)
    for func in spec.functions.values():
        submits = func.helpers & code.SUBMIT_HELPERS
        if not submits:
            continue
        helpers = ", ".join(sorted(code.HELPER_NAMES[h] for h in submits))
        if DROPS_MAP not in spec.maps:
            out[func.name] = (
                f"{func.name}() calls {helpers} in an object not compiled by bpfnb, "
                "so failed submissions are not counted"
            )
        elif DROPS_MAP not in func.maps:
            out[func.name] = (
                f"{func.name}() calls {helpers} without bpfnb's counting wrapper (through a "
                "function pointer, or with the helper's name undefined or in parentheses), "
                "so failed submissions are not counted"
            )
        elif named is not None:
            out[func.name] = (
                f"the source calls {named.group(1)} past bpfnb's counting wrapper "
                f"({named.group(0).strip()!r}), so some failed submissions may not be counted"
            )
    return out


__all__ = ["DROPS_MAP", "FULL", "LOST", "DropCounter", "uncounted_submissions"]
