"""The cache directory: refusing links and foreign directories, dependency checks, bounds.

These tests need no kernel. The ownership tests chown directories to uid 65534
(nobody), so they need root.
"""

from __future__ import annotations

import fcntl
import os
import stat
import time
from pathlib import Path

import pytest

from bpfnb.build import cache
from bpfnb.errors import BpfnbError, CacheError

NOBODY = 65534
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("BPFNB_CACHE_DIR", "XDG_CACHE_HOME", "BPFNB_CACHE_MAX_MB"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


# -- the root ------------------------------------------------------------------------------


def test_root_is_created_private(tmp_path: Path, env: pytest.MonkeyPatch) -> None:
    env.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    root = cache.cache_root()
    assert root == tmp_path / "xdg" / "bpfnb"
    assert _mode(root) == 0o700 and root.is_dir()
    env.setenv("BPFNB_CACHE_DIR", str(tmp_path / "own"))
    (tmp_path / "own").mkdir(mode=0o755)
    os.chmod(tmp_path / "own", 0o755)
    assert cache.cache_root() == tmp_path / "own"
    assert _mode(tmp_path / "own") == 0o700  # our own directory: tightened


def test_planted_symlink_root_is_refused_untouched(tmp_path: Path, env: pytest.MonkeyPatch) -> None:
    shared, victim = tmp_path / "shared", tmp_path / "victim"
    shared.mkdir()
    victim.mkdir()
    os.chmod(victim, 0o755)
    (shared / "bpfnb").symlink_to(victim)
    env.setenv("XDG_CACHE_HOME", str(shared))
    with pytest.raises(CacheError) as info:
        cache.cache_root()
    message = str(info.value)
    assert str(shared / "bpfnb") in message and "symbolic link" in message
    assert "BPFNB_CACHE_DIR" in message
    assert isinstance(info.value, BpfnbError)
    assert _mode(victim) == 0o755 and list(victim.iterdir()) == []
    assert os.path.islink(shared / "bpfnb")


def test_symlink_below_the_root_is_refused(tmp_path: Path, env: pytest.MonkeyPatch) -> None:
    env.setenv("BPFNB_CACHE_DIR", str(tmp_path / "c"))
    root = cache.cache_root()
    victim = tmp_path / "victim"
    victim.mkdir()
    (root / cache.OBJECTS).symlink_to(victim)
    with pytest.raises(CacheError, match="symbolic link"):
        cache.store_object("k", b"data", cache.Dependencies(), {})
    assert list(victim.iterdir()) == []


def test_file_instead_of_directory_is_refused(tmp_path: Path, env: pytest.MonkeyPatch) -> None:
    (tmp_path / "c").write_text("not a directory")
    env.setenv("BPFNB_CACHE_DIR", str(tmp_path / "c"))
    with pytest.raises(CacheError, match="is not a directory"):
        cache.cache_root()


@needs_root
def test_foreign_cache_dir_is_refused_before_any_change(
    tmp_path: Path, env: pytest.MonkeyPatch
) -> None:
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    os.chmod(foreign, 0o777)
    os.chown(foreign, NOBODY, NOBODY)
    env.setenv("BPFNB_CACHE_DIR", str(foreign))
    with pytest.raises(CacheError) as info:
        cache.cache_root()
    assert str(foreign) in str(info.value) and f"uid {NOBODY}" in str(info.value)
    assert _mode(foreign) == 0o777  # not chmodded
    assert os.lstat(foreign).st_uid == NOBODY
    assert list(foreign.iterdir()) == []


@needs_root
def test_foreign_directory_behind_xdg_is_refused(tmp_path: Path, env: pytest.MonkeyPatch) -> None:
    (tmp_path / "bpfnb").mkdir()
    os.chmod(tmp_path / "bpfnb", 0o755)
    os.chown(tmp_path / "bpfnb", NOBODY, NOBODY)
    env.setenv("XDG_CACHE_HOME", str(tmp_path))
    with pytest.raises(CacheError, match=f"belongs to uid {NOBODY}"):
        cache.cache_root()
    assert _mode(tmp_path / "bpfnb") == 0o755


# -- dependencies ------------------------------------------------------------------------------


def test_dependencies_detect_changes_and_shadowing(tmp_path: Path) -> None:
    first, second, third = (tmp_path / n for n in ("first", "second", "third"))
    for d in (first, second, third):
        d.mkdir()
    (third / "sub").mkdir()
    header = third / "sub" / "foo.h"
    header.write_text("#define X 1\n")
    deps = cache.Dependencies.scan([str(header)], [str(first), str(second), str(third)])
    assert deps.absent == [str(first / "sub" / "foo.h"), str(second / "sub" / "foo.h")]
    assert deps.valid()
    assert cache.Dependencies.from_json(deps.to_json()) == deps
    (second / "sub").mkdir()
    (second / "sub" / "foo.h").write_text("#define X 2\n")  # would now be found first
    assert not deps.valid()
    (second / "sub" / "foo.h").unlink()
    assert deps.valid()
    header.write_text("#define X 3\n")  # same size, new content
    assert not deps.valid()


def test_dependencies_reject_malformed_records() -> None:
    with pytest.raises(ValueError):
        cache.Dependencies.from_json([["/x", 1, 2]])
    with pytest.raises(ValueError):
        cache.Dependencies.from_json({"files": [["/x", 1, 2]], "absent": []})


def test_object_cache_round_trip_and_corruption(tmp_path: Path, env: pytest.MonkeyPatch) -> None:
    env.setenv("BPFNB_CACHE_DIR", str(tmp_path / "c"))
    header = tmp_path / "h.h"
    header.write_text("x")
    deps = cache.Dependencies.scan([str(header)], [])
    path = cache.store_object("key1", b"object bytes", deps, {"warnings": []})
    hit = cache.lookup_object("key1")
    assert hit is not None and hit.path == path and hit.extra == {"warnings": []}
    assert path.read_bytes() == b"object bytes" and _mode(path) == 0o600
    path.write_bytes(b"garbage")
    assert cache.lookup_object("key1") is None
    assert cache.lookup_object("missing") is None


# -- size and eviction -------------------------------------------------------------------------


def _entry(root: Path, name: str, size: int, age: float) -> Path:
    directory = cache.private_dir(root / name)
    (directory / "prelude.h.pch").write_bytes(b"\0" * size)
    cache.mark_used(directory)
    past = time.time() - age
    os.utime(directory / cache.USED_NAME, (past, past))
    os.utime(directory, (past, past))
    return directory


def test_cache_size_counts_files_not_links(tmp_path: Path, env: pytest.MonkeyPatch) -> None:
    env.setenv("BPFNB_CACHE_DIR", str(tmp_path / "c"))
    root = cache.cache_root()
    _entry(root, "prelude-a", 1000, 0)
    outside = tmp_path / "big"
    outside.write_bytes(b"\0" * 50_000)
    (root / "link").symlink_to(outside)
    assert cache.cache_size() == 1000


def test_prune_evicts_least_recently_used_first(tmp_path: Path, env: pytest.MonkeyPatch) -> None:
    env.setenv("BPFNB_CACHE_DIR", str(tmp_path / "c"))
    root = cache.cache_root()
    oldest = _entry(root, "prelude-old", 4000, 3000)
    middle = _entry(root, "prelude-mid", 4000, 2000)
    kept = _entry(root, "kernel-old", 4000, 4000)
    newest = _entry(root, "prelude-new", 4000, 1000)
    recent = _entry(root, "prelude-recent", 4000, 1)  # within the grace period
    freed = cache.prune(limit=12_000, keep=[kept])
    assert freed == 8000
    assert not oldest.exists() and not middle.exists()
    assert kept.exists() and newest.exists() and recent.exists()
    assert cache.cache_size() == 12000
    assert not [p for p in root.iterdir() if p.name.startswith(".trash-")]


def test_prune_never_evicts_an_entry_in_use(tmp_path: Path, env: pytest.MonkeyPatch) -> None:
    env.setenv("BPFNB_CACHE_DIR", str(tmp_path / "c"))
    root = cache.cache_root()
    busy = _entry(root, "prelude-busy", 4000, 5000)
    idle = _entry(root, "prelude-idle", 4000, 4000)
    fd = os.open(busy / cache.LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)  # what a compile using the prelude holds
        assert cache.prune(limit=0) == 4000
    finally:
        os.close(fd)
    assert busy.exists() and not idle.exists()


def test_prune_evicts_objects_and_limit_from_environment(
    tmp_path: Path, env: pytest.MonkeyPatch
) -> None:
    env.setenv("BPFNB_CACHE_DIR", str(tmp_path / "c"))
    for i in range(4):
        path = cache.store_object(f"k{i}", b"\0" * 100_000, cache.Dependencies(), {})
        meta = path.with_suffix(".json")
        past = time.time() - 1000 + i
        for p in (path, meta):
            os.utime(p, (past, past))
    size = cache.cache_size()
    assert 400_000 < size < 401_000
    env.setenv("BPFNB_CACHE_MAX_MB", str(250_000 / 2**20))
    assert cache.size_limit() == 250_000
    cache.prune()
    objects = cache.objects_dir()
    assert sorted(p.name for p in objects.glob("*.o")) == ["k2.o", "k3.o"]
    assert sorted(p.name for p in objects.glob("*.json")) == ["k2.json", "k3.json"]
    env.setenv("BPFNB_CACHE_MAX_MB", "lots")
    with pytest.raises(CacheError, match="BPFNB_CACHE_MAX_MB"):
        cache.size_limit()


def test_locked_reports_an_evicted_directory(tmp_path: Path, env: pytest.MonkeyPatch) -> None:
    env.setenv("BPFNB_CACHE_DIR", str(tmp_path / "c"))
    entry = _entry(cache.cache_root(), "prelude-x", 10, 5000)
    with cache.locked(entry, shared=True) as live:
        assert live
    assert cache.prune(limit=0) > 0
    with cache.locked(entry, shared=True) as live:
        assert not live


def test_unusable_locations_are_clear_errors(tmp_path: Path, env: pytest.MonkeyPatch) -> None:
    (tmp_path / "file").write_text("")
    env.setenv("BPFNB_CACHE_DIR", str(tmp_path / "file" / "cache"))
    with pytest.raises(CacheError, match=r"cannot create .*file.*BPFNB_CACHE_DIR"):
        cache.cache_root()
    deps = cache.Dependencies.scan([str(tmp_path / "vanished.h")], [])
    assert not deps.valid()
