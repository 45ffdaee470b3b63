"""The configure phase: which programs of an object load, and how big its maps are.

Between libbpf's open and load (:class:`bpfnb.kernel.loader.OpenObject`), bpfnb decides
what libbpf-tools decide in their user-space halves:

* **Programs.** The user may name them: ``programs=[...]`` loads only those,
  ``skip=[...]`` leaves those out. Otherwise, of each group of alternative programs
  (:func:`bpfnb.object.variants.variant_groups`: a ``tp_btf`` and a ``raw_tp`` version
  of one hook, ``fentry`` and ``kprobe`` versions, kill tracepoints and
  ``signal_generate``) the first alternative this kernel supports is loaded, never two;
  and a program whose attach point does not exist here (``sys_enter_sync_file_range2``
  on x86_64) or whose attach kind the kernel lacks (kprobes without
  ``CONFIG_KPROBES``, fentry refused by lockdown) is left out when the rest of the
  object can run. Every such decision is a note the user sees (``prog.notes``).
* **Map sizes.** ``max_entries={"map": n}`` sets sizes; a map declared without
  ``max_entries`` (libbpf-tools set them from user space) gets a default
  (:data:`DEFAULT_MAX_ENTRIES`, :data:`DEFAULT_RINGBUF_BYTES`), with a note.

What the kernel supports is probed once per process: fentry/fexit by loading a
minimal program (the kernel may refuse them at load time), kprobes from the kprobe PMU,
attach points from tracefs, the kernel's BTF and ``/proc/kallsyms``.
"""

from __future__ import annotations

import mmap
import re
import struct
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from bpfnb import diagnostics
from bpfnb.build.toolchain import VMLINUX_BTF
from bpfnb.errors import BpfnbError, CommandError, KernelFeatureError, LoadError
from bpfnb.kernel import loader, system
from bpfnb.object import mapcheck, maptypes, sections, variants
from bpfnb.object.spec import ObjectSpec

#: Entries of a keyed map declared without ``max_entries`` (BCC's default too).
DEFAULT_MAX_ENTRIES = 10240
#: Bytes of a ring buffer declared without ``max_entries``.
DEFAULT_RINGBUF_BYTES = 256 * 1024
#: Kinds whose ``max_entries`` 0 is right: libbpf sizes perf event arrays itself (one
#: slot per CPU), and local storage / struct_ops maps must be created with 0.
_SIZED_BY_LIBBPF = frozenset(
    {
        "perf_event_array",
        "sk_storage",
        "inode_storage",
        "task_storage",
        "cgrp_storage",
        "cgroup_storage",
        "percpu_cgroup_storage",
        "struct_ops",
        "arena",
    }
)
#: Kinds sized in bytes like a ring buffer.
_RING_KINDS = frozenset({"ringbuf", "user_ringbuf"})
_TRAMPOLINE_KINDS = frozenset({"fentry", "fexit", "fmod_ret", "lsm"})
_KPROBE_KINDS = frozenset({"kprobe", "kretprobe", "ksyscall", "kretsyscall"})
#: Functions one of which every kernel with BTF has, to probe fentry with.
_PROBE_FUNCTIONS = ("do_nanosleep", "ksys_read", "vfs_read", "do_sys_openat2", "schedule")

_LOCK = threading.Lock()
_KIND_PROBLEMS: dict[str, str | None] = {}
_BTF_NAMES: frozenset[str] | None = None
_KALLSYMS: frozenset[str] | None = None


# --------------------------------------------------------------------------------------
# What this kernel has


def btf_names() -> frozenset[str]:
    """Every name in the running kernel's BTF string table (empty without BTF)."""
    global _BTF_NAMES
    with _LOCK:
        if _BTF_NAMES is None:
            try:
                data = VMLINUX_BTF.read_bytes()
                hdr_len, _to, _tl, str_off, str_len = struct.unpack_from("<IIIII", data, 4)
                start = hdr_len + str_off
                _BTF_NAMES = frozenset(
                    data[start : start + str_len].decode(errors="replace").split("\0")
                )
            except (OSError, struct.error):
                _BTF_NAMES = frozenset()
        return _BTF_NAMES


def kernel_functions() -> frozenset[str]:
    """Text symbols of ``/proc/kallsyms`` (the functions kprobes can attach to)."""
    global _KALLSYMS
    with _LOCK:
        if _KALLSYMS is None:
            names = set()
            try:
                with open("/proc/kallsyms") as f:
                    for line in f:
                        parts = line.split()
                        if len(parts) >= 3 and parts[1] in "tTwW":
                            names.add(parts[2])
            except OSError:
                pass
            _KALLSYMS = frozenset(names)
        return _KALLSYMS


def _probe_trampoline() -> str | None:
    """Load a minimal fentry program: None when it loads, else the kernel's refusal."""
    names = btf_names()
    func = next((f for f in _PROBE_FUNCTIONS if f in names), None)
    if func is None:
        return "no kernel BTF to attach fentry/fexit programs with"
    from bpfnb.build import compiler  # the build layer is below this one

    source = f'SEC("fentry/{func}")\nint BPF_PROG(bpfnb_probe_fentry) {{ return 0; }}\n'
    try:
        result = compiler.compile_cell(source, "bpfnb_probe_fentry")
        data = result.object_path.read_bytes()
        opened = loader.open_object(data, ObjectSpec.from_bytes(data), "bpfnb_probe")
        opened.load().close()
    except LoadError as err:
        log = f"{err}\n{err.log}"
        if "EPERM" in log or "Operation not permitted" in log:
            return (
                "the kernel refuses fentry/fexit programs here (loading one fails with "
                "EPERM: kernel lockdown, or no BPF trampoline on this machine)"
            )
        detail = [ln for ln in err.log.splitlines() if "failed" in ln]
        return "the kernel refuses fentry/fexit programs here: " + (
            detail[0].removeprefix("libbpf: ") if detail else str(err)
        )
    except BpfnbError as err:
        return f"cannot check whether fentry/fexit programs load here: {err}"
    return None


def kind_problem(kind: str, *, attach: bool = True) -> str | None:
    """Why this kernel cannot run programs of an attach kind, or None when it can.

    With ``attach`` False only what stops a program from *loading* counts (fentry
    refused); a kprobe program loads without kprobes, it just cannot attach.
    """
    if kind in _KPROBE_KINDS:
        if attach and not system.kprobes_available():
            return "this kernel has no kprobes (built without CONFIG_KPROBES)"
        return None
    if kind == "tp_btf" and not VMLINUX_BTF.exists():
        return "this kernel has no BTF (tp_btf programs need /sys/kernel/btf/vmlinux)"
    if kind not in _TRAMPOLINE_KINDS:
        return None
    with _LOCK:
        if kind in _KIND_PROBLEMS:
            return _KIND_PROBLEMS[kind]
    problem = _probe_trampoline()
    with _LOCK:
        for each in _TRAMPOLINE_KINDS:
            _KIND_PROBLEMS[each] = problem
    return problem


#: Attach kinds whose attach point must exist for the program to *load*.
_LOAD_TIME_TARGETS = _TRAMPOLINE_KINDS | {"tp_btf"}


def target_problem(section: str, *, attach: bool = True) -> str | None:
    """Why a program's attach point does not exist on this kernel, or None.

    With ``attach`` False only attach points a program needs to load are checked.
    """
    kind = sections.attach_kind(section)
    hook = sections.hook_of(section)
    if kind is None or not hook or (not attach and kind not in _LOAD_TIME_TARGETS):
        return None
    if kind == "tracepoint":
        tracefs = system.tracefs_path()
        target = section.lstrip("?").partition("/")[2]
        events = tracefs / "events" if tracefs is not None else None
        if events is not None and events.is_dir() and not (events / target).is_dir():
            return f"this kernel has no tracepoint {target.replace('/', ':')}"
        return None
    names = btf_names()
    if kind in ("raw_tp", "tp_btf"):
        if names and f"btf_trace_{hook}" not in names:
            return f"this kernel has no tracepoint {hook}"
        return None
    func = hook.split(":")[-1]
    if kind in _TRAMPOLINE_KINDS:
        if names and func not in names:
            return f"this kernel's BTF has no function {func}"
        return None
    if kind in ("kprobe", "kretprobe"):
        symbols = kernel_functions()
        if symbols and func not in symbols:
            return f"this kernel has no function {func} to probe"
    return None


def program_problem(section: str, *, attach: bool = True) -> str | None:
    """Why a program cannot run here (its kind, then its attach point), or None."""
    kind = sections.attach_kind(section)
    if kind is None:
        return None
    return kind_problem(kind, attach=attach) or target_problem(section, attach=attach)


def _load_time(section: str) -> bool:
    """Whether a program's problem stops it from loading (not only from attaching)."""
    return program_problem(section, attach=False) is not None


# --------------------------------------------------------------------------------------
# The choice


@dataclass
class Selection:
    """Which programs load, and why.

    Attributes
    ----------
    load : dict of str to bool
        Program -> whether it loads.
    notes : list of str
        The decisions, for the user.
    """

    load: dict[str, bool]
    notes: list[str] = field(default_factory=list)


def _names(values: Sequence[str] | str | None) -> list[str]:
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    return [n.strip() for v in values for n in v.split(",") if n.strip()]


def select_programs(
    spec: ObjectSpec,
    initial: Mapping[str, bool],
    *,
    programs: Sequence[str] | str | None = None,
    skip: Sequence[str] | str | None = None,
    attach: bool = True,
) -> Selection:
    """Decide which programs load (see the module docstring).

    Parameters
    ----------
    spec : ObjectSpec
        The object.
    initial : mapping
        Program -> autoload as the object says (``SEC("?...")`` programs are off).
    programs, skip : names, optional
        The user's choice (``"a,b"`` or a list); ``programs`` turns the automatic
        choice off.
    attach : bool
        Whether the programs will be attached (else only what stops a program from
        loading counts).

    When no program would be left, programs that merely cannot *attach* stay in, so
    that attaching reports the precise error (a missing tracepoint, no kprobes).

    Raises
    ------
    CommandError
        A name that is not a program of the object.
    KernelFeatureError
        A program the user chose, or every alternative of a group when nothing else is
        left, cannot run on this kernel (with why).
    """
    load = dict(initial)
    chosen, skipped = _names(programs), _names(skip)
    for name in [*chosen, *skipped]:
        if name not in load:
            raise CommandError(
                f"no program {name!r} in the object (programs: {', '.join(load) or 'none'})"
            )
    sel = Selection(load)
    section_of = {p.name: p.section for p in spec.programs}
    if chosen:
        for name in load:
            load[name] = name in chosen and name not in skipped
        sel.notes.append(f"loaded only the programs asked for: {', '.join(chosen)}")
        for name in chosen:
            problem = program_problem(section_of.get(name, ""), attach=attach)
            if problem is not None and load[name] and _load_time(section_of.get(name, "")):
                raise KernelFeatureError(
                    f'program {name!r} (SEC("{section_of[name]}")) cannot run here: {problem}'
                )
        if skipped:
            sel.notes.append(f"left out as asked: {', '.join(skipped)}")
        return sel
    for name in skipped:
        load[name] = False
    if skipped:
        sel.notes.append(f"left out as asked: {', '.join(skipped)}")
    problems: dict[str, str] = {}
    decided: set[str] = set()
    for group in variants.variant_groups(spec):
        alternatives = [
            a for a in group.alternatives if any(load.get(p, False) for p in a.programs)
        ]
        if len(alternatives) < 2:
            continue
        decided.update(group.programs)
        picked: variants.Alternative | None = None
        why_not: list[str] = []
        for alt in alternatives:
            issues = [
                f"{p}: {problem}"
                for p in alt.programs
                if load.get(p)
                and (problem := program_problem(section_of.get(p, ""), attach=attach))
            ]
            if not issues:
                picked = alt
                break
            why_not.append(f"{alt.label} ({'; '.join(issues)})")
        for alt in alternatives:
            if alt is not picked:
                for p in alt.programs:
                    load[p] = False
        others = [a for a in alternatives if a is not picked]
        if picked is None:
            problems[", ".join(group.programs)] = "no alternative can run here: " + "; ".join(
                why_not
            )
            continue
        left = "; ".join(f"{a.label} ({', '.join(a.programs)})" for a in others)
        text = (
            f"{group.what}: loaded {picked.label} ({', '.join(picked.programs)}), left out "
            f"{left}: {group.why}, and attaching both would count each event twice"
        )
        if why_not:
            text += " (" + "; ".join(f"not {w}" for w in why_not) + ")"
        sel.notes.append(text)
    for name, on in list(load.items()):
        if not on or name in decided:
            continue
        problem = program_problem(section_of.get(name, ""), attach=attach)
        if problem is not None:
            load[name] = False
            problems[name] = problem
    if problems and not any(load.values()):
        # Nothing else can run: keep programs that load and only fail to attach, so
        # attaching explains precisely (and with attach=False they load).
        for name in list(problems):
            if name in section_of and not _load_time(section_of[name]):
                load[name] = True
                del problems[name]
    described = {
        name: f'{name} (SEC("{section_of[name]}"))' if name in section_of else name
        for name in problems
    }
    for name, problem in problems.items():
        sel.notes.append(f"left out {described[name]}: {problem}")
    if problems and not any(load.values()):
        raise KernelFeatureError(
            "no program of the object can run on this kernel:\n"
            + "\n".join(f"  {described[n]}: {why}" for n, why in problems.items())
        )
    return sel


# --------------------------------------------------------------------------------------
# Map sizes


def _check_size(name: str, kind: str, entries: int) -> None:
    if entries <= 0:
        raise CommandError(f"map {name!r}: max_entries must be a positive number, not {entries}")
    if kind in _RING_KINDS:
        page = mmap.PAGESIZE
        if entries % page or entries & (entries - 1):
            raise CommandError(
                f"map {name!r} (ringbuf): max_entries is its size in bytes and must be a "
                f"power of 2 and a multiple of {page}, not {entries}"
            )


def size_maps(opened: loader.OpenObject, max_entries: Mapping[str, int] | None = None) -> list[str]:
    """Set the user's map sizes and defaults for maps declared without one; return notes.

    Raises
    ------
    CommandError
        A map name the object does not have, or a size the map cannot take.
    """
    notes: list[str] = []
    user = dict(max_entries or {})
    names = [n for n, m in opened.maps.items() if not m.internal]
    for name, entries in user.items():
        if name not in names:
            raise CommandError(
                f"--max-entries {name}={entries}: no map {name!r} "
                f"(maps: {', '.join(n for n in names if not n.startswith('bpfnb_')) or 'none'})"
            )
        kind = maptypes.type_name(opened.maps[name].type)
        _check_size(name, kind, int(entries))
        opened.set_max_entries(name, int(entries))
    for name in names:
        m = opened.maps[name]
        kind = maptypes.type_name(m.type)
        if name in user or m.max_entries or kind in _SIZED_BY_LIBBPF:
            continue
        entries = DEFAULT_RINGBUF_BYTES if kind in _RING_KINDS else DEFAULT_MAX_ENTRIES
        opened.set_max_entries(name, entries)
        unit = " bytes" if kind in _RING_KINDS else " entries"
        notes.append(
            f"map {name} ({kind}) is declared without max_entries: created with "
            f"{entries}{unit} (choose with --max-entries {name}=N)"
        )
    return notes


_MAP_FAIL_RE = re.compile(
    r"map '([^']+)': failed to create: (.*)|Error in bpf_create_map_xattr\(([^)]+)\):\s*(.*?)\."
)


def map_creation_error(
    log: str,
    opened: loader.OpenObject,
    spec: ObjectSpec | None = None,
    source: str = "",
    line_offset: int = 0,
) -> LoadError | None:
    """A load error naming the map the kernel refused to create, or None.

    With the object's ``spec`` and the cell's ``source``, the error names the
    declaration's mistake (:func:`bpfnb.object.mapcheck.refusal_cause`) and quotes the
    line declaring the map.
    """
    for line in log.splitlines():
        m = _MAP_FAIL_RE.search(line)
        if m is None:
            continue
        name = m.group(1) or m.group(3)
        reason = (m.group(2) or m.group(4) or "").strip()
        found = opened.maps.get(name)
        if found is None:
            continue
        kind = maptypes.type_name(found.type)
        text = (
            f"the kernel refused to create map {name!r} ({kind}, max_entries "
            f"{found.max_entries}): {reason}"
        )
        declared = spec.maps.get(name) if spec is not None else None
        cause = mapcheck.refusal_cause(declared) if declared is not None else None
        declared_at = mapcheck.declaration_line(source, name) if source else None
        quoted = (
            diagnostics.quote_cell_line(source, declared_at, line_offset=line_offset)
            if declared_at
            else []
        )
        if cause is not None:
            return LoadError("\n".join([text, f"why: map {name!r} {cause}", *quoted]), log)
        if quoted:
            text += "\n" + "\n".join(quoted)
        if found.max_entries == 0:
            text += f"\nhint: give it a size: __uint(max_entries, N) or --max-entries {name}=N"
        elif kind == "ringbuf":
            text += (
                "\nhint: a ring buffer's max_entries is its size in bytes: a power of 2 "
                f"and a multiple of {mmap.PAGESIZE}"
            )
        else:
            text += (
                "\nhint: check its key/value sizes and flags (a hash needs a key; "
                "BPF_F_NO_PREALLOC only applies to hashes and LPM tries)"
            )
        return LoadError(text, log)
    return None


__all__ = [
    "DEFAULT_MAX_ENTRIES",
    "DEFAULT_RINGBUF_BYTES",
    "Selection",
    "btf_names",
    "kind_problem",
    "map_creation_error",
    "program_problem",
    "select_programs",
    "size_maps",
    "target_problem",
]
