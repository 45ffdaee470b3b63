"""Alternative programs of one object: variants of the same handler (pure).

libbpf-tools ship several programs for one job and pick one in user space with
``bpf_program__set_autoload``: a ``tp_btf`` and a ``raw_tp`` version of a scheduler
hook, an ``fentry`` and a ``kprobe`` version of a function hook, kill-syscall
tracepoints and the ``signal_generate`` tracepoint that also sees every kill. Loading
them all counts every event twice. :func:`variant_groups` finds such groups so that
one alternative of each is loaded (the choice needs the kernel: see
:mod:`bpfnb.kernel.configure`).

The rules, each over programs libbpf attaches by itself:

1. **Same event, different attach kinds.** Programs hooking the same kernel event
   (:func:`bpfnb.object.sections.hook_of`) at the same phase (entry: tracepoint,
   raw_tp, tp_btf, fentry, kprobe; exit: fexit, kretprobe) with different attach
   kinds are alternatives; the alternatives are the attach kinds.
2. **Same handler name, different attach kinds.** ``sched_switch_btf`` /
   ``sched_switch_tp``, ``fentry_vfs_read`` / ``kprobe_vfs_read``,
   ``irq_handler_entry_btf`` / ``irq_handler_entry``: names equal once the attach
   kind's prefix or suffix is removed (:func:`handler_base`), at least one of them
   naming its kind (``_btf``, ``kprobe_``...), join the same group even when their
   hooks differ (``handle_exec`` and ``trace_exec`` do not).
3. **An event that covers others.** A tracepoint that sees everything another set of
   hooks sees (``signal/signal_generate`` fires for every signal ``kill``, ``tkill``
   and ``tgkill`` send) makes those programs alternatives to it when they feed the
   same map (see :data:`COVERING_HOOKS`).

Within a group the alternatives are ordered by :data:`KIND_PREFERENCE` (rules 1, 2)
or covering hook first (rule 3); the caller loads the first one the kernel supports.
Two programs of the *same* attach kind on the same event are never alternatives (a
cell may count an event in two ways on purpose).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from bpfnb.object import code, sections
from bpfnb.object.spec import ObjectSpec

#: Attach kinds that can be alternatives, most preferred first: BTF-typed hooks
#: before untyped ones, tracepoints before function hooks.
KIND_PREFERENCE = ("tp_btf", "raw_tp", "tracepoint", "fentry", "kprobe", "fexit", "kretprobe")
_EXIT_KINDS = frozenset({"fexit", "kretprobe"})

#: hook -> hooks whose events it also sees (rule 3).
COVERING_HOOKS: dict[str, frozenset[str]] = {
    "signal_generate": frozenset(
        f"sys_{phase}_{call}" for phase in ("enter", "exit") for call in ("kill", "tkill", "tgkill")
    ),
}

_KIND_WORDS = (
    "tp_btf",
    "raw_tp",
    "raw_tracepoint",
    "tracepoint",
    "btf",
    "tp",
    "raw",
    "kprobe",
    "kretprobe",
    "fentry",
    "fexit",
    "handle",
    "trace",
)
_PREFIX_RE = re.compile(r"^(?:(?:" + "|".join(_KIND_WORDS) + r")_+)+")
_SUFFIX_RE = re.compile(r"(?:_+(?:" + "|".join(_KIND_WORDS) + r"))+$")
#: Words that name an attach kind (``handle``/``trace`` prefixes name nothing).
_MARKERS = tuple(w for w in _KIND_WORDS if w not in ("handle", "trace"))
_MARKED_RE = re.compile(r"(?:^|_)(?:" + "|".join(_MARKERS) + r")(?:_|$)")


@dataclass(frozen=True)
class Alternative:
    """One way of doing a group's job: a set of programs loaded together.

    Attributes
    ----------
    label : str
        What it is in messages (``tp_btf``, ``signal_generate``).
    programs : tuple of str
        Its programs, in object order.
    """

    label: str
    programs: tuple[str, ...]


@dataclass(frozen=True)
class VariantGroup:
    """Programs that do one job in alternative ways: load exactly one alternative.

    Attributes
    ----------
    what : str
        The job, in messages (``sched_switch``, ``irq_handler_entry``).
    why : str
        Why the programs are alternatives.
    alternatives : tuple of Alternative
        Most preferred first.
    """

    what: str
    why: str
    alternatives: tuple[Alternative, ...]

    @property
    def programs(self) -> list[str]:
        """Every program of the group."""
        return [p for alt in self.alternatives for p in alt.programs]


def handler_base(name: str) -> str:
    """A handler's name without its attach kind (``sched_switch_btf`` -> ``sched_switch``)."""
    base = _SUFFIX_RE.sub("", _PREFIX_RE.sub("", name))
    return base or name


def _kind_marked(name: str) -> bool:
    """Whether a handler's name says its attach kind (``sched_switch_btf``, ``kprobe_x``)."""
    return _MARKED_RE.search(name) is not None


def _phase(kind: str) -> str:
    return "exit" if kind in _EXIT_KINDS else "entry"


def _candidates(spec: ObjectSpec) -> list[tuple[str, str, str]]:
    """(program, kind, hook) of the programs that may have alternatives."""
    out = []
    for prog in spec.programs:
        kind = sections.attach_kind(prog.section)
        if kind in KIND_PREFERENCE:
            out.append((prog.name, kind, sections.hook_of(prog.section)))
    return out


class _Union:
    def __init__(self, items: Iterable[str]) -> None:
        self.parent = {i: i for i in items}

    def find(self, i: str) -> str:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def join(self, a: str, b: str) -> None:
        self.parent[self.find(a)] = self.find(b)


def _kind_groups(spec: ObjectSpec) -> list[VariantGroup]:
    """Rules 1 and 2: groups whose alternatives are attach kinds."""
    progs = _candidates(spec)
    kinds = {name: kind for name, kind, _ in progs}
    union = _Union(kinds)
    by_hook: dict[tuple[str, str], list[str]] = {}
    by_base: dict[tuple[str, str], list[str]] = {}
    for name, kind, hook in progs:
        if hook:
            by_hook.setdefault((_phase(kind), hook), []).append(name)
        by_base.setdefault((_phase(kind), handler_base(name)), []).append(name)
    reasons: dict[str, str] = {}
    for table, why in ((by_hook, "event"), (by_base, "handler")):
        for names in table.values():
            if len({kinds[n] for n in names}) < 2:
                continue
            if why == "handler" and not any(_kind_marked(n) for n in names):
                continue  # handle_exec / trace_exec: same words, not one handler's variants
            for other in names[1:]:
                union.join(names[0], other)
            for n in names:
                reasons.setdefault(union.find(n), why)
    members: dict[str, list[str]] = {}
    for name, _, _ in progs:
        members.setdefault(union.find(name), []).append(name)
    groups = []
    hooks = {name: hook for name, _, hook in progs}
    for root, names in members.items():
        if len({kinds[n] for n in names}) < 2:
            continue
        alternatives = tuple(
            Alternative(kind, tuple(n for n in names if kinds[n] == kind))
            for kind in KIND_PREFERENCE
            if any(kinds[n] == kind for n in names)
        )
        hook_names = sorted({hooks[n] for n in names if hooks[n]})
        what = ", ".join(hook_names) or handler_base(names[0])
        labels = ", ".join(a.label for a in alternatives)
        why = (
            f"they are {labels} programs on the same kernel event"
            if reasons.get(union.find(root)) == "event" and len(hook_names) == 1
            else f"they are {labels} variants of one handler"
        )
        groups.append(VariantGroup(what, why, alternatives))
    return groups


def _covering_groups(spec: ObjectSpec, taken: set[str]) -> list[VariantGroup]:
    """Rule 3: a covering tracepoint and the programs on the hooks it covers."""
    progs = [p for p in _candidates(spec) if p[0] not in taken]
    funcs = spec.functions
    groups = []
    for hook, covered in COVERING_HOOKS.items():
        top = [name for name, _, h in progs if h == hook]
        low = [name for name, _, h in progs if h in covered]
        if not top or not low:
            continue
        top_maps = set().union(*(code.maps_of_program(funcs, n) for n in top if n in funcs))
        low_maps = set().union(*(code.maps_of_program(funcs, n) for n in low if n in funcs))
        if funcs and not (top_maps & low_maps):
            continue  # they feed different maps: both are wanted
        low_hooks = sorted({h for _, _, h in progs if h in covered})
        groups.append(
            VariantGroup(
                hook,
                f"{hook} also sees the events of {', '.join(low_hooks)} and they feed the "
                "same maps",
                (Alternative(hook, tuple(top)), Alternative(", ".join(low_hooks), tuple(low))),
            )
        )
    return groups


def variant_groups(spec: ObjectSpec) -> list[VariantGroup]:
    """The groups of alternative programs of an object (empty when there are none)."""
    groups = _kind_groups(spec)
    taken = {p for g in groups for p in g.programs}
    return groups + _covering_groups(spec, taken)


__all__ = [
    "COVERING_HOOKS",
    "KIND_PREFERENCE",
    "Alternative",
    "VariantGroup",
    "handler_base",
    "variant_groups",
]
