"""bpfnb's on-disk cache: where it is, how it is kept private, bounded and validated.

The cache root is ``$BPFNB_CACHE_DIR``, else ``$XDG_CACHE_HOME/bpfnb``, else
``~/.cache/bpfnb``. It holds one entry per kind of work that is expensive to redo:

- ``kernel-ID/``: the kernel's ``vmlinux.h`` (``ID`` hashes the kernel's identity);
- ``prelude-KEY/``: a precompiled prelude (``prelude.h`` and its PCH, ~15 MB) per
  toolchain and flag set;
- ``objects/KEY.o`` with ``KEY.json``: compiled cells, keyed by content, with the
  files they depend on (:class:`Dependencies`).

Safety: every directory of the cache must be a real directory (not a symbolic link)
owned by this user; it is created with mode 0700 and its mode is tightened only after
its type and owner were checked on an open descriptor (``O_NOFOLLOW|O_DIRECTORY``).
Anything else is refused with a :class:`~bpfnb.errors.CacheError`, never repaired.
Files are written atomically (temporary file + rename).

Size: after each write the cache is pruned to :func:`size_limit` bytes
(``$BPFNB_CACHE_MAX_MB``, 128 MiB by default), least recently used entries first.
An entry is never evicted while another process holds its lock (a compile that uses a
prelude holds it shared), nor within :data:`GRACE_SECONDS` of its last use (a caller
may be about to load an object it was just given), nor when the caller asks to keep it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bpfnb.errors import CacheError

DEFAULT_LIMIT = 128 * 1024 * 1024
GRACE_SECONDS = 60.0
LOCK_NAME = ".lock"
USED_NAME = ".used"
OBJECTS = "objects"
_TRASH_PREFIX = ".trash-"
_OPEN_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def sha256(data: bytes) -> str:
    """Return the hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


# -- the root and private directories --------------------------------------------------------


def cache_location() -> Path:
    """Return where the cache root is (without creating or checking it)."""
    env = os.environ.get("BPFNB_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "bpfnb"


def cache_root() -> Path:
    """Return bpfnb's cache directory, created with mode 0700 when missing.

    Raises
    ------
    CacheError
        The directory is a symbolic link, not a directory, or belongs to another user.
    """
    root = cache_location()
    if not root.is_absolute():
        root = Path.cwd() / root
    if not os.path.lexists(root.parent):
        try:
            root.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise CacheError(
                f"cannot create {root.parent} for the bpfnb cache: {err.strerror}; "
                "set BPFNB_CACHE_DIR to a directory of your own"
            ) from None
    return private_dir(root)


def _refuse(path: Path, why: str) -> CacheError:
    return CacheError(
        f"bpfnb cache directory {path} {why}: bpfnb does not use or change it; remove it, "
        "or set BPFNB_CACHE_DIR to a directory of your own"
    )


def private_dir(path: Path) -> Path:
    """Create ``path`` (mode 0700) or check the existing one; return it.

    The existing entry is opened with ``O_NOFOLLOW|O_DIRECTORY`` and checked on that
    descriptor before anything changes: it must be a directory owned by this user.
    Only then are group and other permission bits removed.

    Raises
    ------
    CacheError
        ``path`` is a symbolic link, not a directory, or owned by someone else.
    """
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError as err:
        raise CacheError(
            f"cannot create the bpfnb cache directory {path}: {err.strerror}; "
            "set BPFNB_CACHE_DIR to a directory of your own"
        ) from None
    try:
        fd = os.open(path, _OPEN_DIR)
    except OSError as err:
        if err.errno in (errno.ELOOP, errno.ENOTDIR):
            if os.path.islink(path):
                raise _refuse(path, f"is a symbolic link (to {os.readlink(path)})") from None
            raise _refuse(path, "is not a directory") from None
        raise CacheError(f"cannot open the bpfnb cache directory {path}: {err}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISDIR(st.st_mode):
            raise _refuse(path, "is not a directory")
        if st.st_uid != os.geteuid():
            raise _refuse(path, f"belongs to uid {st.st_uid}, not to this user ({os.geteuid()})")
        if stat.S_IMODE(st.st_mode) & 0o077:
            os.fchmod(fd, 0o700)
    finally:
        os.close(fd)
    return path


@contextlib.contextmanager
def locked(directory: Path, *, shared: bool = False) -> Iterator[bool]:
    """Hold a lock on a cache directory; yield whether the directory is still live.

    A builder holds it exclusively, a user (a compile reading a PCH) shared; eviction
    takes it exclusively without waiting, so it never removes an entry in use. When
    the directory was evicted or replaced while waiting, ``False`` is yielded and the
    caller should look the entry up again.
    """
    lock_path = directory / LOCK_NAME
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except FileNotFoundError:
        yield False
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        try:
            live = os.fstat(fd).st_ino == os.lstat(lock_path).st_ino
        except OSError:
            live = False
        yield live
    finally:
        os.close(fd)  # also releases the lock


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename (mode 0600)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def mark_used(entry: Path) -> None:
    """Record that a cache directory entry was just used (for least-recently-used order)."""
    marker = entry / USED_NAME
    try:
        os.utime(marker)
    except FileNotFoundError:
        with contextlib.suppress(OSError):
            os.close(os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o600))


# -- dependencies of a compiled object ---------------------------------------------------------


def _signature(st: os.stat_result) -> list[int]:
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


@dataclass
class Dependencies:
    """The files a compile read, and the files whose absence it relied on.

    Attributes
    ----------
    files : list
        ``[path, size, mtime_ns, ctime_ns, inode]`` of every file clang read.
    absent : list of str
        Paths that did not exist and would have been found first had they existed:
        for a header found in the N-th directory of the include search path, the same
        name in each of the directories before it. Creating one of them shadows the
        header, so the object is stale.
    """

    files: list[list[Any]] = field(default_factory=list)
    absent: list[str] = field(default_factory=list)

    @classmethod
    def scan(cls, paths: Iterable[str], search_dirs: Sequence[str]) -> Dependencies:
        """Record ``paths`` (absolute, as clang's dependency output names them).

        Parameters
        ----------
        paths : iterable of str
            Every file clang read.
        search_dirs : sequence of str
            The include search path in clang's order (quote directories, then ``-I``,
            system and ``-idirafter`` directories), absolute.
        """
        files: list[list[Any]] = []
        absent: set[str] = set()
        dirs = [d.rstrip("/") or "/" for d in search_dirs]
        for path in dict.fromkeys(paths):
            try:
                files.append([path, *_signature(os.stat(path))])
            except OSError:
                files.append([path, -1, -1, -1, -1])  # gone already: never valid
                continue
            for index, directory in enumerate(dirs):
                prefix = directory if directory.endswith("/") else directory + "/"
                if not path.startswith(prefix):
                    continue
                name = path[len(prefix) :]
                for earlier in dirs[:index]:
                    candidate = os.path.join(earlier, name)
                    if not os.path.lexists(candidate):
                        absent.add(candidate)
        return cls(files, sorted(absent))

    def valid(self) -> bool:
        """Whether every file is unchanged and every absent path is still absent."""
        for path, *signature in self.files:
            try:
                st = os.stat(str(path))
            except OSError:
                return False
            if _signature(st) != list(signature):
                return False
        return not any(os.path.lexists(p) for p in self.absent)

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-able form."""
        return {"files": self.files, "absent": self.absent}

    @classmethod
    def from_json(cls, data: Any) -> Dependencies:
        """Rebuild from :meth:`to_json` output (raises ValueError on anything else)."""
        if not isinstance(data, dict):
            raise ValueError("dependencies must be an object")
        files, absent = data.get("files"), data.get("absent")
        if not isinstance(files, list) or not isinstance(absent, list):
            raise ValueError("dependencies need 'files' and 'absent' lists")
        for entry in files:
            if not isinstance(entry, list) or len(entry) != 5:
                raise ValueError("a dependency is [path, size, mtime, ctime, inode]")
        return cls(files, [str(p) for p in absent])


# -- the object cache --------------------------------------------------------------------------


@dataclass(frozen=True)
class CachedObject:
    """An object found in the cache.

    Attributes
    ----------
    path : Path
        The object file (do not modify it).
    extra : dict
        What the compiler stored with it (e.g. its warnings).
    """

    path: Path
    extra: dict[str, Any]


def objects_dir() -> Path:
    """Return the directory of cached objects (created private)."""
    return private_dir(cache_root() / OBJECTS)


def lookup_object(key: str) -> CachedObject | None:
    """Return the object stored under ``key`` when it is intact and up to date.

    The object's bytes must match the SHA-256 recorded with it, and its
    :class:`Dependencies` must still hold; otherwise None (the caller recompiles).
    """
    directory = objects_dir()
    obj, meta = directory / f"{key}.o", directory / f"{key}.json"
    try:
        info = json.loads(meta.read_text())
        data = obj.read_bytes()
        deps = Dependencies.from_json(info.get("deps"))
    except (OSError, ValueError, AttributeError):
        return None
    if sha256(data) != info.get("sha256") or not deps.valid():
        return None
    with contextlib.suppress(OSError):
        os.utime(meta)
    extra = info.get("extra")
    return CachedObject(obj, extra if isinstance(extra, dict) else {})


def store_object(key: str, data: bytes, deps: Dependencies, extra: dict[str, Any]) -> Path:
    """Store an object under ``key`` with its dependencies; return its path."""
    directory = objects_dir()
    obj, meta = directory / f"{key}.o", directory / f"{key}.json"
    write_atomic(obj, data)
    info = {"sha256": sha256(data), "deps": deps.to_json(), "extra": extra}
    write_atomic(meta, json.dumps(info).encode())
    return obj


# -- size accounting and eviction --------------------------------------------------------------


def size_limit() -> int:
    """Return the cache size limit in bytes (``$BPFNB_CACHE_MAX_MB``, default 128 MiB)."""
    text = os.environ.get("BPFNB_CACHE_MAX_MB", "").strip()
    if not text:
        return DEFAULT_LIMIT
    try:
        megabytes = float(text)
    except ValueError:
        raise CacheError(f"BPFNB_CACHE_MAX_MB={text!r} is not a number of megabytes") from None
    if megabytes < 0:
        raise CacheError(f"BPFNB_CACHE_MAX_MB={text!r} must not be negative")
    return int(megabytes * 1024 * 1024)


def _tree_size(path: Path) -> int:
    """Bytes of the regular files under ``path`` (symbolic links are not followed)."""
    total = 0
    try:
        entries = list(os.scandir(path))
    except OSError:
        return 0
    for entry in entries:
        try:
            if entry.is_dir(follow_symlinks=False):
                total += _tree_size(Path(entry.path))
            elif entry.is_file(follow_symlinks=False):
                total += entry.stat(follow_symlinks=False).st_size
        except OSError:
            continue
    return total


def cache_size(root: Path | None = None) -> int:
    """Return the bytes the cache uses (its regular files; links are not followed)."""
    root = root or cache_location()
    if not os.path.isdir(root) or os.path.islink(root):
        return 0
    return _tree_size(root)


@dataclass
class _Entry:
    path: Path
    size: int
    used: float
    kind: str  # "dir", "object" or "trash"


def _last_use(directory: Path) -> float:
    """When an entry was last used: its marker, else when it was last written."""
    with contextlib.suppress(OSError):
        return os.lstat(directory / USED_NAME).st_mtime
    times = []
    for path in (directory, directory / "ok"):
        with contextlib.suppress(OSError):
            times.append(os.lstat(path).st_mtime)
    return max(times, default=0.0)


def _entries(root: Path) -> list[_Entry]:
    entries: list[_Entry] = []
    for item in os.scandir(root):
        path = Path(item.path)
        if item.name.startswith(_TRASH_PREFIX):
            with contextlib.suppress(OSError):
                entries.append(_Entry(path, _tree_size(path), item.stat().st_mtime, "trash"))
        elif item.name == OBJECTS and item.is_dir(follow_symlinks=False):
            entries += _object_entries(path)
        elif item.name.startswith(("prelude-", "kernel-")) and item.is_dir(follow_symlinks=False):
            entries.append(_Entry(path, _tree_size(path), _last_use(path), "dir"))
    return entries


def _object_entries(directory: Path) -> list[_Entry]:
    sizes: dict[str, int] = {}
    used: dict[str, float] = {}
    for item in os.scandir(directory):
        stem, dot, suffix = item.name.rpartition(".")
        if not dot or suffix not in ("o", "json") or item.name.startswith("."):
            continue
        try:
            st = item.stat(follow_symlinks=False)
        except OSError:
            continue
        sizes[stem] = sizes.get(stem, 0) + st.st_size
        used[stem] = max(used.get(stem, 0.0), st.st_mtime)
    return [_Entry(directory / stem, sizes[stem], used[stem], "object") for stem in sizes]


def _evict(entry: _Entry) -> int:
    """Remove one entry unless someone holds it; return the bytes freed."""
    if entry.kind == "object":
        for suffix in (".json", ".o"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"{entry.path}{suffix}")
        return entry.size
    if entry.kind == "trash":
        shutil.rmtree(entry.path, ignore_errors=True)
        return entry.size
    lock_path = entry.path / LOCK_NAME
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError:
        return 0
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return 0  # in use by a concurrent compile
        trash = entry.path.with_name(f"{_TRASH_PREFIX}{entry.path.name}-{os.getpid()}")
        try:
            os.rename(entry.path, trash)
        except OSError:
            return 0
    finally:
        os.close(fd)
    shutil.rmtree(trash, ignore_errors=True)
    return entry.size


def prune(
    limit: int | None = None, *, keep: Collection[Path] = (), root: Path | None = None
) -> int:
    """Evict least recently used entries until the cache fits ``limit`` bytes.

    Parameters
    ----------
    limit : int, optional
        Bytes; :func:`size_limit` when omitted.
    keep : collection of Path
        Entries never to evict (the running kernel's ``vmlinux.h`` directory, the
        prelude the caller uses).
    root : Path, optional
        The cache root (:func:`cache_root` when omitted).

    Returns
    -------
    int
        Bytes freed. Entries in use by another process or used within
        :data:`GRACE_SECONDS` are kept even when the cache stays above the limit.
    """
    limit = size_limit() if limit is None else limit
    root = root or cache_root()
    entries = _entries(root)
    total = sum(e.size for e in entries)
    kept = {Path(p) for p in keep}
    now = time.time()
    freed = 0
    for entry in sorted(entries, key=lambda e: (e.kind != "trash", e.used)):
        if total - freed <= limit and entry.kind != "trash":
            break
        if entry.path in kept or now - entry.used < GRACE_SECONDS:
            continue
        freed += _evict(entry)
    return freed
