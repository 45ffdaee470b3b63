"""What a program's ``SEC()`` name says: how it attaches and what the kernel needs for it.

Pure: the one table of section prefixes bpfnb knows (libbpf's section names,
``tools/lib/bpf/libbpf.c``). :func:`attach_kind` tells whether libbpf attaches a
program by itself and as what; the loader, the feature checks (kprobes, fentry) and the
choice between alternative programs of one cell all read it from here.

Examples
--------
>>> attach_kind("tracepoint/syscalls/sys_enter_getpid")
'tracepoint'
>>> attach_kind("uprobe")  # no target: attached by hand, not automatically
>>> hook_of("tp_btf/sched_switch"), hook_of("raw_tp/sched_switch")
('sched_switch', 'sched_switch')
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SectionKind:
    """One family of SEC() names.

    Attributes
    ----------
    kind : str
        The attach kind (``tracepoint``, ``raw_tp``, ``fentry``, ``kprobe``...).
    needs_target : bool
        libbpf attaches it automatically only when the section names a target
        (``uprobe/PATH:FUNC``, ``tracepoint/CAT/NAME``).
    needs : str
        The kernel feature it depends on: ``"kprobes"``, ``"trampoline"`` (fentry,
        fexit, fmod_ret, lsm: BPF trampolines, refused under some lockdown modes),
        ``"tracefs"`` or ``""``.
    """

    kind: str
    needs_target: bool = False
    needs: str = ""


#: SEC() prefix (text before the first '/') -> what it is. Sleepable variants (``.s``)
#: attach like their base.
SECTIONS: dict[str, SectionKind] = {
    "tracepoint": SectionKind("tracepoint", True, "tracefs"),
    "tp": SectionKind("tracepoint", True, "tracefs"),
    "raw_tracepoint": SectionKind("raw_tp", True),
    "raw_tp": SectionKind("raw_tp", True),
    "raw_tracepoint.w": SectionKind("raw_tp", True),
    "raw_tp.w": SectionKind("raw_tp", True),
    "tp_btf": SectionKind("tp_btf", True),
    "fentry": SectionKind("fentry", True, "trampoline"),
    "fentry.s": SectionKind("fentry", True, "trampoline"),
    "fexit": SectionKind("fexit", True, "trampoline"),
    "fexit.s": SectionKind("fexit", True, "trampoline"),
    "fmod_ret": SectionKind("fmod_ret", True, "trampoline"),
    "fmod_ret.s": SectionKind("fmod_ret", True, "trampoline"),
    "lsm": SectionKind("lsm", True, "trampoline"),
    "lsm.s": SectionKind("lsm", True, "trampoline"),
    "iter": SectionKind("iter", True),
    "iter.s": SectionKind("iter", True),
    "uprobe": SectionKind("uprobe", True),
    "uretprobe": SectionKind("uretprobe", True),
    "uprobe.s": SectionKind("uprobe", True),
    "uretprobe.s": SectionKind("uretprobe", True),
    "usdt": SectionKind("usdt", True),
    "kprobe": SectionKind("kprobe", True, "kprobes"),
    "kretprobe": SectionKind("kretprobe", True, "kprobes"),
    "ksyscall": SectionKind("ksyscall", True, "kprobes"),
    "kretsyscall": SectionKind("kretsyscall", True, "kprobes"),
    "kprobe.multi": SectionKind("kprobe", True, "kprobes"),
    "kretprobe.multi": SectionKind("kretprobe", True, "kprobes"),
    "kprobe.session": SectionKind("kprobe", True, "kprobes"),
    "perf_event": SectionKind("perf_event"),
}


def prefix(section: str) -> str:
    """The part of a SEC() name before the first ``/`` (a leading ``?`` removed)."""
    return section.lstrip("?").split("/", 1)[0]


def section_kind(section: str) -> SectionKind | None:
    """The :class:`SectionKind` of a SEC() name, or None for other program types."""
    return SECTIONS.get(prefix(section))


def attach_kind(section: str) -> str | None:
    """The attach kind of a SEC() name when libbpf attaches it by itself, else None.

    ``perf_event`` programs are attached by bpfnb to sampling events it opens; they are
    not attached by libbpf (None here).
    """
    found = section_kind(section)
    if found is None or found.kind == "perf_event":
        return None
    rest = section.lstrip("?").partition("/")[2]
    if found.needs_target and not rest:
        return None
    if found.kind == "tracepoint" and "/" not in rest:
        return None
    return found.kind


def needs(section: str) -> str:
    """The kernel feature a SEC() name depends on (``"kprobes"``, ``"trampoline"``...)."""
    found = section_kind(section)
    return found.needs if found is not None else ""


def hook_of(section: str) -> str:
    """The kernel event a SEC() name hooks, comparable across attach kinds.

    ``tp_btf/sched_switch``, ``raw_tp/sched_switch`` and ``tracepoint/sched/sched_switch``
    all hook ``sched_switch``; ``fentry/do_unlinkat`` and ``kprobe/do_unlinkat`` hook
    ``do_unlinkat``. Sections without a target give ``""``.
    """
    rest = section.lstrip("?").partition("/")[2]
    if not rest:
        return ""
    found = section_kind(section)
    if found is not None and found.kind == "tracepoint":
        return rest.rsplit("/", 1)[-1]
    return rest.split("+", 1)[0]
