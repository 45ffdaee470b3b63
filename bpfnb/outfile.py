"""Output files bpfnb writes for the user (``to_csv()``, ``%bpf export``, ``record()``).

bpfnb usually runs as root, so the files it writes follow two rules:

* an existing file is never replaced unless the caller asked for it (``overwrite=True``,
  ``%bpf export ... --force``): :class:`~bpfnb.errors.OutputExistsError` otherwise;
* nothing is ever written *through* a symbolic link: a link planted at the path is
  refused like any existing file, or with ``overwrite`` the link itself is replaced,
  never the file it points at.

Whole files (:func:`write_new`) are written to a temporary file in the same directory
and then published under their name in one step (a hard link, which fails when the name
exists; or a rename with ``overwrite``), so readers never see half a file. Streams
(:func:`create`) get a new file created with ``O_CREAT | O_EXCL`` (which does not follow
links), or with ``overwrite`` a temporary file renamed over the name.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from bpfnb.errors import OutputExistsError

_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
MODE = 0o644


def _exists_error(path: Path) -> OutputExistsError:
    what = "a symbolic link" if path.is_symlink() else "a file"
    return OutputExistsError(
        f"{path} exists ({what}); not replacing it: pass overwrite=True "
        "(%bpf export ... --force) or choose another path"
    )


def _temporary(path: Path) -> tuple[int, Path]:
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    with contextlib.suppress(OSError):
        os.fchmod(fd, MODE)
    return fd, Path(name)


def create(path: str | os.PathLike[str], *, overwrite: bool = False) -> tuple[int, Path]:
    """Create a new, empty file at ``path`` for writing and return ``(fd, path)``.

    Raises
    ------
    OutputExistsError
        ``path`` exists (a file, a link, anything) and ``overwrite`` is False.
    """
    out = Path(path)
    if not overwrite:
        try:
            return os.open(out, _FLAGS, MODE), out
        except FileExistsError:
            raise _exists_error(out) from None
    if out.is_dir() and not out.is_symlink():
        raise IsADirectoryError(f"{out} is a directory")
    fd, tmp = _temporary(out)
    try:
        os.replace(tmp, out)  # replaces the name (a link itself), never a link's target
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return fd, out


def write_new(path: str | os.PathLike[str], data: bytes, *, overwrite: bool = False) -> Path:
    """Write ``data`` as the whole file ``path`` (published complete, in one step).

    Raises
    ------
    OutputExistsError
        ``path`` exists and ``overwrite`` is False.
    """
    out = Path(path)
    if not overwrite and (out.exists() or out.is_symlink()):
        raise _exists_error(out)
    fd, tmp = _temporary(out)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        if overwrite:
            os.replace(tmp, out)
        else:
            try:
                os.link(tmp, out, follow_symlinks=False)  # fails when the name exists
            except FileExistsError:
                raise _exists_error(out) from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
    return out


__all__ = ["complete_lines", "create", "write_new"]


def complete_lines(data: bytes, done: int) -> tuple[int, int]:
    """The longest prefix of ``data[:done]`` that ends with a whole CSV line.

    A write that fails part-way (a full disk) leaves ``done`` bytes of ``data`` in the
    file; cutting the file back to this prefix keeps every whole row and no torn one. A
    newline inside a quoted field (an odd number of ``"`` before it) does not end a line.

    Parameters
    ----------
    data : bytes
        CSV text as written.
    done : int
        How many bytes of it reached the file.

    Returns
    -------
    tuple of (int, int)
        The prefix's length in bytes and how many lines it holds.
    """
    length = lines = 0
    quoted = False
    start = 0
    while True:
        end = data.find(b"\n", start, done)
        if end < 0:
            return length, lines
        quoted ^= data.count(b'"', start, end) % 2 == 1
        if not quoted:
            length, lines = end + 1, lines + 1
        start = end + 1
