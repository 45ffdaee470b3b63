"""BCC's C dialect, rewritten into libbpf C over a real tokenizer (pure but for tracefs).

BCC programs (its ``tools/*.py``, ``examples/``, countless articles) are C with
extras that BCC's clang frontend rewrites: method calls on maps
(``counts.increment(key)``, ``events.perf_submit(ctx, &e, sizeof(e))``), map macros
(``BPF_TABLE("hash", ...)``, ``BPF_HISTOGRAM(dist)``...), probe macros
(``TRACEPOINT_PROBE(sched, sched_process_exit)`` with ``args->pid``,
``RAW_TRACEPOINT_PROBE``, ``KFUNC_PROBE``) and probe naming (``kprobe__do_sys_open``).
:func:`rewrite` turns such a cell into libbpf C that bpfnb compiles like any cell:

* map macros become BTF-defined maps (``struct { __uint(type, ...); ... } name
  SEC(".maps")``), so bpfnb decodes them from BTF; an int-keyed ``BPF_HISTOGRAM`` is a
  log2 histogram bpfnb shows as one;
* method calls become helper calls on ``&map`` (see :data:`METHODS`), with the small
  helpers of ``bpfnb/bcc.h``;
* probe macros and ``kprobe__``/``kretprobe__`` functions get their ``SEC()``:
  tracepoint arguments are a struct written from tracefs (:mod:`bpfnb.build.tpformat`);
  ``kprobe__``/``kretprobe__`` functions attach as kprobes, or as fentry/fexit when
  the caller says the kernel has no kprobes but takes fentry (``probe_style``);
* kernel headers BCC programs include (``<linux/sched.h>``, ``<net/sock.h>``,
  ``<bcc/proto.h>``...) are dropped: vmlinux.h has their types;
* ``bpf_trace_printk(fmt, ...)`` is libbpf's ``bpf_printk``; a chain of kernel pointer
  dereferences (``task->real_parent->tgid``, which BCC turns into probe reads) reads
  with ``BPF_CORE_READ``.

Every replacement keeps the line breaks of what it replaces, so the rewritten cell has
the user's line numbers: clang's errors and the verifier's lines point at the cell
(the caller quotes the original text). :func:`is_bcc` tells whether a cell obviously
is BCC C.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from bpfnb.build import ctokens, tpformat
from bpfnb.build.ctokens import Edits, Token
from bpfnb.errors import CompileError

#: The preamble line a rewritten cell needs (bpfnb/bcc.h).
PREAMBLE = '#include "bpfnb/bcc.h"\n'
DEFAULT_ENTRIES = "10240"
#: ``#include`` prefixes of kernel headers BCC programs include; vmlinux.h has their types.
KERNEL_HEADERS = ("linux/", "uapi/", "net/", "bcc/", "asm/", "asm-generic/", "trace/")

# BPF_TABLE type strings -> (BPF_MAP_TYPE_ suffix, bpfnb kind for method dispatch).
TABLE_TYPES: dict[str, str] = {
    "hash": "HASH",
    "array": "ARRAY",
    "percpu_hash": "PERCPU_HASH",
    "percpu_array": "PERCPU_ARRAY",
    "lru_hash": "LRU_HASH",
    "lru_percpu_hash": "LRU_PERCPU_HASH",
    "prog": "PROG_ARRAY",
    "perf_output": "PERF_EVENT_ARRAY",
    "perf_array": "PERF_EVENT_ARRAY",
    "stacktrace": "STACK_TRACE",
    "lpm_trie": "LPM_TRIE",
    "queue": "QUEUE",
    "stack": "STACK",
    "cgroup_array": "CGROUP_ARRAY",
    "ringbuf": "RINGBUF",
    "devmap": "DEVMAP",
    "cpumap": "CPUMAP",
    "xskmap": "XSKMAP",
    "sockmap": "SOCKMAP",
    "sockhash": "SOCKHASH",
}
#: Macros whose call marks a cell as BCC C.
BCC_MACROS = frozenset(
    {
        "BPF_TABLE",
        "BPF_F_TABLE",
        "BPF_TABLE_PUBLIC",
        "BPF_TABLE_SHARED",
        "BPF_HISTOGRAM",
        "BPF_STACK_TRACE",
        "BPF_RINGBUF_OUTPUT",
        "BPF_QUEUE",
        "BPF_STACK",
        "BPF_LPM_TRIE",
        "BPF_PROG_ARRAY",
        "BPF_CGROUP_ARRAY",
        "BPF_ARRAY_OF_MAPS",
        "BPF_HASH_OF_MAPS",
        "TRACEPOINT_PROBE",
        "RAW_TRACEPOINT_PROBE",
        "KFUNC_PROBE",
        "KRETFUNC_PROBE",
        "LSM_PROBE",
    }
)
#: Map macros bpfnb's own maps.h also has (BCC C only with a method call on the map).
SHARED_MACROS = frozenset(
    {
        "BPF_HASH",
        "BPF_LRU_HASH",
        "BPF_PERCPU_HASH",
        "BPF_LRU_PERCPU_HASH",
        "BPF_ARRAY",
        "BPF_PERCPU_ARRAY",
        "BPF_PERF_OUTPUT",
    }
)

#: Method -> template. ``{m}`` is ``&map``; ``{0}``, ``{1}``... the arguments;
#: ``{p0}``... an argument passed as a pointer (``BPFNB_BCC_PTR``).
METHODS: dict[str, tuple[int, int, str]] = {
    # name: (min args, max args, template)
    "lookup": (1, 1, "bpf_map_lookup_elem({m}, {p0})"),
    "lookup_or_init": (2, 2, "bpfnb_bcc_lookup_or_try_init({m}, {p0}, {p1})"),
    "lookup_or_try_init": (2, 2, "bpfnb_bcc_lookup_or_try_init({m}, {p0}, {p1})"),
    "update": (2, 2, "bpf_map_update_elem({m}, {p0}, {p1}, BPF_ANY)"),
    "insert": (2, 2, "bpf_map_update_elem({m}, {p0}, {p1}, BPF_NOEXIST)"),
    "delete": (1, 1, "bpf_map_delete_elem({m}, {p0})"),
    "increment": (1, 2, "bpfnb_bcc_increment({m}, {0}, {1=1})"),
    "atomic_increment": (1, 2, "bpfnb_bcc_increment({m}, {0}, {1=1})"),
    "perf_submit": (3, 3, "bpf_perf_event_output({0}, {m}, BPF_F_CURRENT_CPU, {1}, {2})"),
    "perf_submit_skb": (
        4,
        4,
        "bpf_perf_event_output({0}, {m}, ((__u64)({1}) << 32) | BPF_F_CURRENT_CPU, {2}, {3})",
    ),
    "ringbuf_output": (3, 3, "bpf_ringbuf_output({m}, {0}, {1}, {2})"),
    "ringbuf_reserve": (1, 1, "bpf_ringbuf_reserve({m}, {0}, 0)"),
    "ringbuf_submit": (2, 2, "bpf_ringbuf_submit({0}, {1})"),
    "ringbuf_discard": (2, 2, "bpf_ringbuf_discard({0}, {1})"),
    "ringbuf_query": (1, 1, "bpf_ringbuf_query({m}, {0})"),
    "push": (2, 2, "bpf_map_push_elem({m}, {p0}, {1})"),
    "pop": (1, 1, "bpf_map_pop_elem({m}, {0})"),
    "peek": (1, 1, "bpf_map_peek_elem({m}, {0})"),
    "get_stackid": (2, 2, "bpf_get_stackid({0}, {m}, {1})"),
    "call": (2, 2, "bpf_tail_call({0}, {m}, {1})"),
    "check_current_task": (1, 1, "bpf_current_task_under_cgroup({m}, {0})"),
    "redirect_map": (2, 2, "bpf_redirect_map({m}, {0}, {1})"),
    "perf_read": (1, 1, "bpf_perf_event_read({m}, {0})"),
    "perf_counter_value": (3, 3, "bpf_perf_event_read_value({m}, {0}, {1}, {2})"),
}
#: Calls whose arguments are read explicitly (no implicit dereference rewrite inside).
_EXPLICIT_READS = re.compile(
    r"^(?:bpf_probe_read\w*|bpf_core_read\w*|BPF_CORE_READ\w*|BPF_PROBE_READ\w*|sizeof"
    r"|typeof|__typeof__|__builtin_\w+|bpf_get_current_comm)$"
)


@dataclass(frozen=True)
class BccMap:
    """A map declared in BCC C.

    Attributes
    ----------
    name : str
        Its C name.
    map_type : str
        The ``BPF_MAP_TYPE_`` suffix (``HASH``, ``PERF_EVENT_ARRAY``...).
    line : int
        Line of the declaration.
    """

    name: str
    map_type: str
    line: int


@dataclass
class Rewritten:
    """What :func:`rewrite` made of a cell.

    Attributes
    ----------
    text : str
        The libbpf C, line for line the cell's.
    preamble : str
        C text to read before the cell (``bpfnb/bcc.h``).
    maps : dict of str to BccMap
        The maps declared with BCC macros.
    notes : list of str
        What was rewritten, for the user.
    """

    text: str
    preamble: str = PREAMBLE
    maps: dict[str, BccMap] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _call_at(tokens: Sequence[Token], i: int) -> bool:
    return i + 1 < len(tokens) and tokens[i + 1].is_punct("(")


def _depth_map(tokens: Sequence[Token]) -> list[int]:
    """Brace depth before each token."""
    depth, out = 0, []
    for t in tokens:
        out.append(depth)
        if t.is_punct("{"):
            depth += 1
        elif t.is_punct("}"):
            depth = max(0, depth - 1)
    return out


def _map_names(tokens: Sequence[Token]) -> set[str]:
    """Names of maps declared in BTF style (``} name SEC(".maps")``) or with macros."""
    names: set[str] = set()
    for i, t in enumerate(tokens):
        if (
            t.is_ident("SEC")
            and i >= 1
            and tokens[i - 1].kind == ctokens.IDENT
            and i + 2 < len(tokens)
            and tokens[i + 2].kind == ctokens.STRING
            and tokens[i + 2].text.strip('"') == ".maps"
        ):
            names.add(tokens[i - 1].text)
        if (t.text in BCC_MACROS or t.text in SHARED_MACROS) and _call_at(tokens, i):
            args, _ = ctokens.split_args(tokens, i + 1)
            name = _declared_name(t.text, args)
            if name:
                names.add(name)
    return names


def _declared_name(macro: str, args: list[list[Token]]) -> str | None:
    if not args or not args[0]:
        return None
    if macro in ("BPF_TABLE", "BPF_F_TABLE", "BPF_TABLE_PUBLIC", "BPF_TABLE_SHARED"):
        return args[3][0].text if len(args) > 3 and args[3] else None
    if macro.endswith("_PROBE"):
        return None
    return args[0][0].text if args[0][0].kind == ctokens.IDENT else None


def is_bcc(source: str) -> bool:
    """Whether ``source`` obviously is BCC C.

    True for a BCC-only macro (``BPF_TABLE``, ``TRACEPOINT_PROBE``, ``BPF_HISTOGRAM``...),
    a ``kprobe__``/``kretprobe__`` function without ``SEC()``, or a BCC method call on a
    map (``counts.increment(key)``).
    """
    tokens = ctokens.code(ctokens.tokenize(source))
    maps = None
    for i, t in enumerate(tokens):
        if t.kind != ctokens.IDENT:
            continue
        if t.text in BCC_MACROS and _call_at(tokens, i):
            return True
        if (
            t.text.startswith(("kprobe__", "kretprobe__"))
            and _call_at(tokens, i)
            and i >= 1
            and tokens[i - 1].kind == ctokens.IDENT
            and not any(x.is_ident("SEC") for x in tokens[max(0, i - 8) : i])
        ):
            return True
        if (
            i + 3 < len(tokens)
            and tokens[i + 1].is_punct(".")
            and tokens[i + 2].text in METHODS
            and tokens[i + 3].is_punct("(")
        ):
            if maps is None:
                maps = _map_names(tokens)
            if t.text in maps:
                return True
    return False


def _text(source: str, tokens: Sequence[Token]) -> str:
    return " ".join(ctokens.text_of(source, tokens).split())


class _Rewriter:
    def __init__(
        self,
        source: str,
        probe_style: str,
        tracepoint_struct: Callable[[str, str, str], str],
    ) -> None:
        self.source = source
        self.all_tokens = ctokens.tokenize(source)
        self.tokens = ctokens.code(self.all_tokens)
        self.depth = _depth_map(self.tokens)
        self.edits = Edits(source)
        self.style = probe_style
        self.tracepoint_struct = tracepoint_struct
        self.maps: dict[str, BccMap] = {}
        self.notes: list[str] = []
        self.structs: set[str] = set()
        self.defined_tags = {
            self.tokens[i + 1].text
            for i, t in enumerate(self.tokens[:-2])
            if t.is_ident("struct", "union")
            and self.tokens[i + 1].kind == ctokens.IDENT
            and self.tokens[i + 2].is_punct("{")
        }
        self.done: set[int] = set()  # token indexes already replaced

    # -- helpers --------------------------------------------------------------------------

    def arg(self, tokens: Sequence[Token]) -> str:
        return ctokens.text_of(self.source, tokens)

    def replace_tokens(self, first: int, last: int, text: str) -> None:
        self.edits.replace(self.tokens[first].start, self.tokens[last].end, text)
        self.done.update(range(first, last + 1))

    def fail(self, token: Token, message: str) -> CompileError:
        return CompileError(f"line {token.line}: {message}")

    # -- includes ---------------------------------------------------------------------

    def includes(self) -> None:
        dropped = []
        for t in self.all_tokens:
            if t.kind != ctokens.DIRECTIVE:
                continue
            m = re.match(r"#\s*include\s*[<\"]([^>\"]+)[>\"]", t.text)
            if m and m.group(1).startswith(KERNEL_HEADERS):
                self.edits.replace(t.start, t.end, "")
                dropped.append(m.group(1))
        if dropped:
            self.notes.append(
                f"dropped #include of kernel headers ({', '.join(dropped)}): vmlinux.h, "
                "which every cell includes, has their types"
            )

    # -- maps -------------------------------------------------------------------------

    def map_def(self, name: str, map_type: str, fields: list[str], line: int) -> str:
        self.maps[name] = BccMap(name, map_type, line)
        body = " ".join([f"__uint(type, BPF_MAP_TYPE_{map_type});", *fields])
        return f'struct {{ {body} }} {name} SEC(".maps")'

    def declaration(self, i: int) -> None:
        t = self.tokens[i]
        args, close = ctokens.split_args(self.tokens, i + 1)
        texts = [self.arg(a) for a in args]
        macro = t.text

        def opt(k: int, default: str) -> str:
            return texts[k] if len(texts) > k and texts[k] else default

        def keyed(map_type: str, key: str, value: str, size: str) -> str:
            return self.map_def(
                texts[0],
                map_type,
                [
                    f"__type(key, {key});",
                    f"__type(value, {value});",
                    f"__uint(max_entries, {size});",
                ],
                t.line,
            )

        if not texts or not texts[0]:
            raise self.fail(t, f"{macro}() needs a map name")
        if macro in ("BPF_TABLE", "BPF_F_TABLE", "BPF_TABLE_PUBLIC", "BPF_TABLE_SHARED"):
            if len(texts) < 5:
                raise self.fail(t, f"{macro}(type, key, leaf, name, size) has 5 arguments")
            kind = texts[0].strip('"')
            if kind == "histogram":
                text = self.histogram(texts[3], texts[1], texts[4], t.line)
            else:
                map_type = TABLE_TYPES.get(kind)
                if map_type is None:
                    raise self.fail(t, f"{macro}: unknown table type {texts[0]}")
                flags = texts[5] if macro == "BPF_F_TABLE" and len(texts) > 5 else ""
                text = self.table(map_type, texts[3], texts[1], texts[2], texts[4], flags, t.line)
        elif macro in ("BPF_HASH", "BPF_LRU_HASH", "BPF_PERCPU_HASH", "BPF_LRU_PERCPU_HASH"):
            map_type = macro.removeprefix("BPF_")
            text = keyed(map_type, opt(1, "u64"), opt(2, "u64"), opt(3, DEFAULT_ENTRIES))
        elif macro in ("BPF_ARRAY", "BPF_PERCPU_ARRAY"):
            map_type = macro.removeprefix("BPF_")
            text = keyed(map_type, "u32", opt(1, "u64"), opt(2, DEFAULT_ENTRIES))
        elif macro == "BPF_HISTOGRAM":
            text = self.histogram(texts[0], opt(1, "int"), opt(2, "64"), t.line)
        elif macro == "BPF_PERF_OUTPUT":
            text = self.map_def(
                texts[0],
                "PERF_EVENT_ARRAY",
                ["__uint(key_size, sizeof(__u32));", "__uint(value_size, sizeof(__u32));"],
                t.line,
            )
        elif macro == "BPF_RINGBUF_OUTPUT":
            pages = opt(1, "64")
            text = self.map_def(
                texts[0], "RINGBUF", [f"__uint(max_entries, ({pages}) * 4096);"], t.line
            )
        elif macro == "BPF_STACK_TRACE":
            text = self.map_def(
                texts[0],
                "STACK_TRACE",
                [
                    "__uint(key_size, sizeof(__u32));",
                    "__uint(value_size, PERF_MAX_STACK_DEPTH * sizeof(__u64));",
                    f"__uint(max_entries, {opt(1, DEFAULT_ENTRIES)});",
                ],
                t.line,
            )
        elif macro in ("BPF_QUEUE", "BPF_STACK"):
            text = self.map_def(
                texts[0],
                macro.removeprefix("BPF_"),
                [
                    f"__type(value, {opt(1, 'u64')});",
                    f"__uint(max_entries, {opt(2, DEFAULT_ENTRIES)});",
                ],
                t.line,
            )
        elif macro == "BPF_LPM_TRIE":
            text = self.table(
                "LPM_TRIE",
                texts[0],
                opt(1, "u64"),
                opt(2, "u64"),
                opt(3, DEFAULT_ENTRIES),
                "BPF_F_NO_PREALLOC",
                t.line,
            )
        elif macro in ("BPF_PROG_ARRAY", "BPF_CGROUP_ARRAY"):
            map_type = "PROG_ARRAY" if macro == "BPF_PROG_ARRAY" else "CGROUP_ARRAY"
            text = keyed(map_type, "u32", "u32", opt(1, DEFAULT_ENTRIES))
        elif macro == "BPF_ARRAY_OF_MAPS":
            inner = opt(1, "").strip('"')
            text = self.map_def(
                texts[0],
                "ARRAY_OF_MAPS",
                [
                    "__type(key, u32);",
                    f"__uint(max_entries, {opt(2, DEFAULT_ENTRIES)});",
                    f"__array(values, typeof({inner}));",
                ],
                t.line,
            )
        elif macro == "BPF_HASH_OF_MAPS":
            # BPF_HASH_OF_MAPS(name, [key_type,] "inner", size)
            if len(texts) >= 4:
                key, inner, size = texts[1], texts[2].strip('"'), texts[3]
            else:
                key, inner, size = "int", opt(1, "").strip('"'), opt(2, DEFAULT_ENTRIES)
            text = self.map_def(
                texts[0],
                "HASH_OF_MAPS",
                [
                    f"__type(key, {key});",
                    f"__uint(max_entries, {size});",
                    f"__array(values, typeof({inner}));",
                ],
                t.line,
            )
        else:
            return
        self.replace_tokens(i, close, text)

    def table(
        self, map_type: str, name: str, key: str, leaf: str, size: str, flags: str, line: int
    ) -> str:
        fields: list[str] = []
        if map_type in ("PERF_EVENT_ARRAY", "PROG_ARRAY", "CGROUP_ARRAY", "STACK_TRACE"):
            fields += [f"__uint(key_size, sizeof({key}));", f"__uint(value_size, sizeof({leaf}));"]
        elif map_type in ("QUEUE", "STACK"):
            fields.append(f"__type(value, {leaf});")
        elif map_type != "RINGBUF":
            fields += [f"__type(key, {key});", f"__type(value, {leaf});"]
        if map_type == "RINGBUF" or map_type != "PERF_EVENT_ARRAY" or size.strip() not in ("0", ""):
            fields.append(f"__uint(max_entries, {size});")
        if flags and flags.strip() != "0":
            fields.append(f"__uint(map_flags, {flags});")
        return self.map_def(name, map_type, fields, line)

    def histogram(self, name: str, key: str, size: str, line: int) -> str:
        if key.strip() in ("int", "u32", "unsigned int", "__u32", "unsigned"):
            # An int-keyed histogram is an array of log2 slots: bpfnb's own log2 scheme.
            slots = size.strip()
            entries = "65" if slots.isdigit() and int(slots) <= 65 else slots
            return self.map_def(
                name,
                "ARRAY",
                [
                    "__type(key, bpfnb_log2_bucket_t);",
                    "__type(value, u64);",
                    f"__uint(max_entries, {entries});",
                ],
                line,
            )
        return self.map_def(
            name,
            "HASH",
            [f"__type(key, {key});", "__type(value, u64);", f"__uint(max_entries, {size});"],
            line,
        )

    # -- probes -----------------------------------------------------------------------

    def tracepoint(self, i: int) -> None:
        t = self.tokens[i]
        args, close = ctokens.split_args(self.tokens, i + 1)
        names = [self.arg(a).strip() for a in args]
        if len(names) != 2 or not all(re.fullmatch(r"\w+", n) for n in names):
            raise self.fail(t, "TRACEPOINT_PROBE(category, event) takes two names")
        category, event = names
        struct = f"tracepoint__{category}__{event}"
        definition = ""
        if struct not in self.structs:
            definition = self.tracepoint_struct(category, event, struct) + " "
            self.structs.add(struct)
        self.replace_tokens(
            i,
            close,
            f'{definition}SEC("tracepoint/{category}/{event}") int {struct}(struct {struct} *args)',
        )

    def raw_tracepoint(self, i: int) -> None:
        t = self.tokens[i]
        args, close = ctokens.split_args(self.tokens, i + 1)
        if len(args) != 1:
            raise self.fail(t, "RAW_TRACEPOINT_PROBE(event) takes one name")
        event = self.arg(args[0]).strip()
        self.replace_tokens(
            i,
            close,
            f'SEC("raw_tracepoint/{event}") int raw_tracepoint__{event}'
            "(struct bpf_raw_tracepoint_args *ctx)",
        )

    def kfunc(self, i: int) -> None:
        t = self.tokens[i]
        args, close = ctokens.split_args(self.tokens, i + 1)
        if not args or not args[0]:
            raise self.fail(t, f"{t.text}(function, args...) needs the function's name")
        func = self.arg(args[0]).strip()
        rest = [self.arg(a) for a in args[1:]]
        section, prefix = {
            "KFUNC_PROBE": ("fentry", "kfunc__"),
            "KRETFUNC_PROBE": ("fexit", "kretfunc__"),
            "LSM_PROBE": ("lsm", "lsm__"),
        }[t.text]
        params = ", ".join([f"{prefix}{func}", *rest])
        self.replace_tokens(i, close, f'SEC("{section}/{func}") int BPF_PROG({params})')

    def named_probe(self, i: int) -> None:
        """``int kprobe__FUNC(struct pt_regs *ctx, args...)`` at file scope."""
        t = self.tokens[i]
        kind, _, func = t.text.partition("__")
        args, close = ctokens.split_args(self.tokens, i + 1)
        if close + 1 >= len(self.tokens) or not self.tokens[close + 1].is_punct("{"):
            return  # a declaration or call, not the probe's definition
        start = i
        while (
            start > 0
            and self.depth[start - 1] == 0
            and self.tokens[start - 1].kind == ctokens.IDENT
        ):
            start -= 1
        if any(x.is_ident("SEC") for x in self.tokens[max(0, start - 6) : start]):
            return
        params = [self.arg(a) for a in args[1:]]
        ret_type = _text(self.source, self.tokens[start:i]) or "int"
        if self.style == "fentry":
            section = "fentry" if kind == "kprobe" else "fexit"
            if kind == "kprobe":
                header = f'SEC("fentry/{func}") {ret_type} BPF_PROG({", ".join([t.text, *params])})'
            else:
                header = f'SEC("fexit/{func}") {ret_type} {t.text}(unsigned long long *ctx)'
                self.fexit_returns(close + 1)
            self.notes.append(f"{t.text} runs as {section}/{func}: this kernel has no kprobes")
        elif kind == "kprobe":
            header = f'SEC("kprobe/{func}") {ret_type} BPF_KPROBE({", ".join([t.text, *params])})'
        else:
            first = self.arg(args[0]) if args and args[0] else "struct pt_regs *ctx"
            header = f'SEC("kretprobe/{func}") {ret_type} {t.text}({first})'
        self.replace_tokens(start, close, header)

    def fexit_returns(self, brace: int) -> None:
        """In a kretprobe__ body run as fexit, ``PT_REGS_RC(ctx)`` is the return value."""
        end = ctokens.matching(self.tokens, brace)
        for j in range(brace, end):
            t = self.tokens[j]
            if t.is_ident("PT_REGS_RC") and _call_at(self.tokens, j):
                _, close = ctokens.split_args(self.tokens, j + 1)
                self.replace_tokens(j, close, "bpfnb_fexit_ret(ctx)")

    # -- methods and calls --------------------------------------------------------------

    def method(self, i: int, names: set[str]) -> bool:
        toks = self.tokens
        if not (
            i + 3 < len(toks)
            and toks[i].text in names
            and toks[i + 1].is_punct(".")
            and toks[i + 2].text in METHODS
            and toks[i + 3].is_punct("(")
            and not (i > 0 and toks[i - 1].is_punct(".", "->"))
        ):
            return False
        name, method = toks[i].text, toks[i + 2].text
        low, high, template = METHODS[method]
        args, close = ctokens.split_args(toks, i + 3)
        texts = [self.arg(a) for a in args]
        if not low <= len(texts) <= high:
            expected = str(low) if low == high else f"{low} or {high}"
            raise self.fail(
                toks[i], f"{name}.{method}() takes {expected} argument(s), got {len(texts)}"
            )
        values: dict[str, str] = {"m": f"&{name}"}
        for k, text in enumerate(texts):
            values[str(k)] = text
            values[f"p{k}"] = f"BPFNB_BCC_PTR({text})"
        out = re.sub(
            r"\{(\w+)(?:=(\w+))?\}", lambda m: values.get(m.group(1), m.group(2) or ""), template
        )
        self.rewrite_inside(i + 4, close)
        self.replace_tokens(i, close, self._splice(i, close, out))
        return True

    def _splice(self, first: int, last: int, text: str) -> str:
        """``text`` with edits already made inside ``first..last`` applied to it."""
        inner = [
            (s, e, r)
            for (s, e, r) in self.edits._edits
            if self.tokens[first].start <= s and e <= self.tokens[last].end
        ]
        if not inner:
            return text
        for s, e, r in inner:
            self.edits._edits.remove((s, e, r))
            original = self.source[s:e]
            text = text.replace(original, r + "\n" * (original.count("\n") - r.count("\n")), 1)
        return text

    def rewrite_inside(self, first: int, last: int) -> None:
        """Rewrite method calls nested in another call's arguments (first..last-1)."""
        for j in range(first, last):
            if j not in self.done:
                self.method(j, set(self.maps) | self.map_names)

    # -- kernel memory ----------------------------------------------------------------

    def kernel_pointers(self) -> dict[int, set[str]]:
        """Per function body (its ``{`` index): variables that point into the kernel.

        ``struct X *v`` where ``struct X`` is not defined in the cell (a kernel type from
        vmlinux.h), except the probe's context parameter.
        """
        out: dict[int, set[str]] = {}
        toks = self.tokens
        body = -1
        for j, t in enumerate(toks):
            if self.depth[j] == 0 and t.is_punct("{"):
                body = j
                out.setdefault(body, set())
            if (
                t.is_ident("struct")
                and j + 3 < len(toks)
                and toks[j + 1].kind == ctokens.IDENT
                and toks[j + 2].is_punct("*")
                and toks[j + 3].kind == ctokens.IDENT
                and toks[j + 1].text not in self.defined_tags
                and not toks[j + 1].text.startswith("tracepoint__")
            ):
                var = toks[j + 3].text
                if var in ("ctx", "args"):
                    continue
                if self.depth[j] == 0:
                    # a parameter of the function whose body comes next
                    nxt = next((k for k in range(j, len(toks)) if toks[k].is_punct("{")), None)
                    if nxt is not None:
                        out.setdefault(nxt, set()).add(var)
                elif body >= 0:
                    out[body].add(var)
        return out

    def dereferences(self) -> None:
        toks = self.tokens
        pointers = self.kernel_pointers()
        calls: list[tuple[str, int]] = []  # enclosing call names and their close index
        current: set[str] = set()
        rewritten = 0
        j = 0
        while j < len(toks):
            t = toks[j]
            if j in pointers:
                current = pointers[j]
            while calls and j > calls[-1][1]:
                calls.pop()
            if t.kind == ctokens.IDENT and _call_at(toks, j):
                with contextlib.suppress(ValueError):
                    calls.append((t.text, ctokens.matching(toks, j + 1)))
            if (
                t.kind == ctokens.IDENT
                and t.text in current
                and j not in self.done
                and j + 2 < len(toks)
                and toks[j + 1].is_punct("->")
                and not (j > 0 and toks[j - 1].is_punct("&", ".", "->"))
                and not any(_EXPLICIT_READS.match(name) for name, _ in calls)
            ):
                end, hops = self._chain(j)
                after = toks[end + 1] if end + 1 < len(toks) else None
                if hops and not (
                    after is not None
                    and after.is_punct("(", "[", "=", "+=", "-=", "|=", "&=", "++", "--")
                ):
                    self.replace_tokens(j, end, f"BPF_CORE_READ({t.text}, {', '.join(hops)})")
                    rewritten += 1
                    j = end + 1
                    continue
            j += 1
        if rewritten:
            self.notes.append(
                f"{rewritten} read(s) through kernel pointers (like task->real_parent->tgid) "
                "use BPF_CORE_READ, as BCC reads them with probe reads"
            )

    def _chain(self, j: int) -> tuple[int, list[str]]:
        """The ``->``/``.`` member chain after ``tokens[j]``: its last index, its hops."""
        toks = self.tokens
        hops: list[str] = []
        k = j + 1
        end = j
        while (
            k + 1 < len(toks) and toks[k].is_punct("->", ".") and toks[k + 1].kind == ctokens.IDENT
        ):
            if toks[k].text == "->":
                hops.append(toks[k + 1].text)
            elif hops:
                hops[-1] += "." + toks[k + 1].text
            end = k + 1
            k += 2
        return end, hops

    # -- the pass ---------------------------------------------------------------------

    def run(self) -> Rewritten:
        self.includes()
        self.map_names = _map_names(self.tokens)
        toks = self.tokens
        for i, t in enumerate(toks):
            if t.kind != ctokens.IDENT or i in self.done:
                continue
            if self.depth[i] == 0 and _call_at(toks, i):
                if t.text in BCC_MACROS or t.text in SHARED_MACROS:
                    if t.text == "TRACEPOINT_PROBE":
                        self.tracepoint(i)
                    elif t.text == "RAW_TRACEPOINT_PROBE":
                        self.raw_tracepoint(i)
                    elif t.text in ("KFUNC_PROBE", "KRETFUNC_PROBE", "LSM_PROBE"):
                        self.kfunc(i)
                    else:
                        self.declaration(i)
                    continue
                if t.text.startswith(("kprobe__", "kretprobe__")):
                    self.named_probe(i)
                    continue
        names = set(self.maps) | self.map_names
        for i, t in enumerate(toks):
            if t.kind != ctokens.IDENT or i in self.done:
                continue
            if self.method(i, names):
                continue
            if t.is_ident("bpf_trace_printk") and _call_at(toks, i):
                self.replace_tokens(i, i, "bpf_printk")
        self.dereferences()
        if self.maps:
            self.notes.append(
                "BCC maps declared as BTF-defined maps: "
                + ", ".join(f"{m.name} ({m.map_type.lower()})" for m in self.maps.values())
            )
        return Rewritten(self.edits.apply(), PREAMBLE, dict(self.maps), self.notes)


def rewrite(
    source: str,
    *,
    probe_style: str = "kprobe",
    tracepoint_struct: Callable[[str, str, str], str] | None = None,
) -> Rewritten:
    """Rewrite BCC C into libbpf C with the same line numbers.

    Parameters
    ----------
    source : str
        The cell.
    probe_style : {"kprobe", "fentry"}
        How ``kprobe__``/``kretprobe__`` functions attach: as kprobes, or (on a kernel
        without kprobes that takes fentry) as fentry/fexit programs.
    tracepoint_struct : callable, optional
        ``(category, event, struct_name) -> C`` for ``TRACEPOINT_PROBE``; by default
        written from tracefs (:func:`bpfnb.build.tpformat.tracepoint_struct`).

    Raises
    ------
    CompileError
        A BCC construct bpfnb cannot read (with the cell line).
    """
    try:
        return _Rewriter(source, probe_style, tracepoint_struct or tpformat.tracepoint_struct).run()
    except ValueError as err:
        raise CompileError(f"cannot read the cell as BCC C: {err}") from None


__all__ = ["BCC_MACROS", "METHODS", "PREAMBLE", "BccMap", "Rewritten", "is_bcc", "rewrite"]
