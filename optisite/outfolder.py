"""Writing outputs: the one place where optisite puts folders and files on disk.

A folder is assembled in a temporary sibling ``.NAME.tmp-*`` and renamed into place, so
a reader sees no folder or a complete one; a single file is written beside itself and
renamed over. Every folder optisite writes holds a marker ``.optisite`` (JSON: kind,
optisite version, optisite's files), and ``--force`` only ever replaces a folder holding
it; the user's own files in such a folder are carried over. ``check_writable`` refuses,
before any work, an output path the write would fail on or that would destroy an input.

``--out LINK`` where LINK is a symbolic link to a folder optisite wrote writes through
the link: the target folder is replaced, the link stays a link. A link to any other
folder is refused with ``--force`` like that folder would be.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import secrets
import shutil
import signal
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from .errors import OptisiteError, OutputExistsError

MARKER = ".optisite"
TMP = ".tmp-"
KINDS = ("solution", "instance", "frontier", "comparison")
_SHORT = 100  # characters of the output's name kept in its temporary sibling's name


class OutputPathError(OptisiteError):
    """An output path that cannot or must not be written (refused before the work)."""


class LeftoverWarning(UserWarning):
    """Temporary folders of an interrupted write were found beside an output."""


# ---------------------------------------------------------------------------------
# Modes, markers, locks
# ---------------------------------------------------------------------------------

def umask() -> int:
    """The process umask (read without changing it where /proc allows)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def folder_mode() -> int:
    return 0o777 & ~umask()


def file_mode() -> int:
    return 0o666 & ~umask()


def read_marker(folder: str | Path) -> dict | None:
    """The marker of a folder optisite wrote, or None (no marker, or not optisite's JSON)."""
    path = Path(folder) / MARKER
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("kind") in KINDS else None


def _write_marker(folder: Path, kind: str, files: Iterable[str]) -> None:
    from . import __version__

    data = {"kind": kind, "optisite": __version__, "files": sorted(set(files) - {MARKER})}
    (folder / MARKER).write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")


def _article(kind: str) -> str:
    return "an" if kind[0] in "aeiou" else "a"


def _flock(fd: int, *, block: bool) -> bool:
    """Exclusive advisory lock on ``fd``; False if another process holds it."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no locks, and leftovers are never judged dead
        return block
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if block else fcntl.LOCK_NB))
    except BlockingIOError:
        return False
    except OSError:  # a file system without locks
        return block
    return True


@contextlib.contextmanager
def _locked(folder: Path):
    """Serialise optisite's final renames into ``folder`` (a lock on the folder itself)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # a folder we may write but not read: no lock, the no-replace rename still holds
        yield
        return
    try:
        _flock(fd, block=True)
        yield
    finally:
        os.close(fd)


def _load_renameat2():
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    return fn


_RENAMEAT2 = _load_renameat2()


def _rename_noreplace(src: Path, dst: Path) -> None:
    """Rename ``src`` to ``dst``, failing with FileExistsError if ``dst`` exists (atomically
    on Linux; elsewhere a rename onto a folder that is not empty fails too)."""
    if _RENAMEAT2 is not None:
        if _RENAMEAT2(-100, os.fsencode(src), -100, os.fsencode(dst), 1) == 0:  # AT_FDCWD, RENAME_NOREPLACE
            return
        err = ctypes.get_errno()
        if err == errno.EEXIST:
            raise FileExistsError(err, os.strerror(err), str(dst))
        if err not in (errno.EINVAL, errno.ENOSYS, errno.EPERM):
            raise OSError(err, os.strerror(err), str(dst))
    if os.path.lexists(dst):
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(dst))
    try:
        os.rename(src, dst)
    except OSError as exc:
        if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(dst)) from None
        raise


# ---------------------------------------------------------------------------------
# Signals: held while an output is written
# ---------------------------------------------------------------------------------

_held: dict | None = None


@contextlib.contextmanager
def signals_deferred():
    """Hold SIGINT/SIGTERM until the block ends, then deliver them to the handlers that were
    in place: a Ctrl-C while an output is written (even a second one) never discards it.

    Python-level handlers are swapped (a thread mask would not do: a signal can land on
    another thread). Nested blocks are one block; a KeyboardInterrupt raised on delivery
    carries ``written``, the last output completed inside the block, for the message.
    """
    global _held
    if _held is not None or threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = {}
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, lambda signum, _frame: caught.append(signum))
    except (ValueError, OSError):
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        yield
        return
    _held = {"written": []}
    try:
        yield
    finally:
        state, _held = _held, None
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        if caught:
            _deliver(caught[0], previous[caught[0]], state["written"])


def _deliver(sig: int, handler, written: list[Path]) -> None:
    try:
        if callable(handler):
            handler(sig, None)
        elif handler in (signal.SIG_DFL, None):
            signal.raise_signal(sig)
    except KeyboardInterrupt as exc:
        if written:
            exc.written = str(written[-1])
        raise


def _note_written(path: Path) -> None:
    if _held is not None:
        _held["written"].append(path)


# ---------------------------------------------------------------------------------
# Checks before the work
# ---------------------------------------------------------------------------------

def _name_max(folder: Path) -> int:
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):
        return 255


def _nearest_existing(path: Path) -> Path:
    while not os.path.lexists(path) and path != path.parent:
        path = path.parent
    return path


def _real(path: Path) -> Path:
    return Path(os.path.realpath(path))


def _relation(a: Path, b: Path) -> str | None:
    """How folder ``a`` relates to folder ``b``: 'is', 'lies inside', 'holds' or None."""
    if a == b:
        return "is"
    if b in a.parents:
        return "lies inside"
    if a in b.parents:
        return "holds"
    return None


def check_writable(out: str | Path, *, force: bool = False, reads: Iterable[str | Path] = (),
                   kind: str = "solution", files: Iterable[str] | None = None) -> list[str]:
    """Refuse, before any work, an output folder the write would fail on or that would destroy
    something; clean leftovers of interrupted writes beside it. Returns warnings to show.

    ``files=None``: ``out`` is a whole folder of ``kind`` (solution, instance); otherwise
    ``out`` receives these files (frontier, comparison) and may already hold other things.
    ``reads``: folders (or files) the run reads; ``out`` must not be, hold or lie inside one.
    """
    try:
        return _check_writable(Path(out), force, reads, kind, files)
    except OSError as exc:  # a path the checks themselves cannot look at (permissions, loops)
        raise OutputPathError(f"--out '{out}' cannot be used ({exc.strerror or type(exc).__name__}); "
                              "choose another --out") from None


def _check_writable(out: Path, force: bool, reads, kind: str, files) -> list[str]:
    shown = str(out)
    if out.name in ("", ".", "..") or str(out).endswith(("/.", "/..")):
        raise OutputPathError(f"--out '{shown}' names no new folder; give a folder name, e.g. --out results")
    _check_names(Path(os.path.abspath(out)), shown)
    real = _real(out)
    here = _real(Path.cwd())
    if _relation(here, real) in ("is", "lies inside"):
        raise OutputPathError(f"--out '{shown}' is the current folder or holds it; give another folder, "
                              "e.g. --out results")
    for r in reads:
        how = _relation(real, _real(Path(r)))
        if how is not None:
            raise OutputPathError(f"--out '{shown}' {how} the folder '{r}' that this run reads; "
                                  "choose an --out outside it")
    if os.path.islink(out) and not os.path.exists(out):
        raise OutputPathError(f"--out '{shown}' is a symbolic link to nothing; remove it or choose another --out")
    if os.path.lexists(out):
        if not real.is_dir():
            raise OutputExistsError(f"--out '{shown}' is a file; give a folder path")
        if files is None:
            if not force:
                raise OutputExistsError(f"output folder '{shown}' already exists; give --force to replace "
                                        "optisite's files in it, or choose another --out")
            _check_replaceable(real, shown, kind)
        else:
            present = [f for f in files if os.path.lexists(real / f)]
            if present and not force:
                raise OutputExistsError(f"'{shown}' already holds a {kind}; give --force to replace it")
            if present and read_marker(real) is None:
                raise OutputPathError(f"'{shown}' holds {present[0]} but is not a folder optisite wrote "
                                      f"(no {MARKER} marker); --force only replaces files in folders "
                                      "optisite wrote: move them away yourself or choose another --out")
            why = _unwritable(real)
            if why:
                raise OutputPathError(f"cannot write in '{shown}' ({why}); choose another --out")
    anchor = _nearest_existing(Path(os.path.abspath(out)).parent)
    if not anchor.is_dir():
        raise OutputPathError(f"--out '{shown}': '{anchor}' is not a folder (a file, or a link to "
                              "nothing); give a folder path")
    why = _unwritable(anchor)
    if why:
        raise OutputPathError(f"--out '{shown}': cannot write in '{anchor}' ({why}); "
                              "choose an --out in a folder you can write to")
    return clean_leftovers(real.parent) if real.parent.is_dir() else []


def _unwritable(folder: Path) -> str | None:
    """Why no folder can be created in ``folder`` (tried for real: permissions, read-only
    mounts, immutable folders and kernel file systems all answer), or None."""
    probe = folder / f".optisite{TMP}probe-{secrets.token_hex(4)}"
    try:
        os.mkdir(probe)
    except OSError as exc:
        return (exc.strerror or type(exc).__name__).lower()
    os.rmdir(probe)
    return None


def _check_names(real: Path, shown: str) -> None:
    anchor = _nearest_existing(real)
    limit = _name_max(anchor if anchor.is_dir() else anchor.parent)
    for part in [real, *real.parents]:
        if part == anchor:
            break
        size = len(os.fsencode(part.name))
        if size > limit:
            raise OutputPathError(f"--out '{shown[:60]}...': the name '{part.name[:30]}...' is {size} bytes long; "
                                  f"at most {limit} fit here: give a shorter name")
    if len(os.fsencode(str(real))) > 4000:
        raise OutputPathError(f"--out '{shown[:60]}...' is too long a path; give a shorter one")


def _check_replaceable(real: Path, shown: str, kind: str) -> None:
    """``--force`` on an existing folder: only one optisite wrote, of the same kind."""
    marker = read_marker(real)
    if marker is None:
        raise OutputPathError(f"'{shown}' is not {_article(kind)} {kind} folder written by optisite (no {MARKER} "
                              "marker); --force only replaces folders optisite wrote: choose another --out, "
                              "or move that folder away yourself")
    if marker["kind"] != kind:
        raise OutputPathError(f"'{shown}' holds {_article(marker['kind'])} {marker['kind']} written by optisite, "
                              f"not {_article(kind)} {kind}; choose another --out")
    for folder in (real, real.parent):
        why = _unwritable(folder)
        if why:
            raise OutputPathError(f"cannot replace '{shown}': cannot write in '{folder}' ({why}); "
                                  "choose another --out")


# ---------------------------------------------------------------------------------
# Leftovers of interrupted writes
# ---------------------------------------------------------------------------------

def _remove_own(folder: Path, own: Iterable[str]) -> list[str]:
    """Delete optisite's entries of ``folder``, then the folder if nothing else is left;
    return the names of what was left (never deleted: optisite did not write it)."""
    own = set(own) | {MARKER}
    left = []
    for name in sorted(os.listdir(folder)):
        path = folder / name
        if name not in own:
            left.append(name)
        elif path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
    if not left:
        with contextlib.suppress(OSError):
            folder.rmdir()
    return left


def clean_leftovers(parent: str | Path) -> list[str]:
    """Remove the ``.NAME.tmp-*`` folders that optisite left in ``parent`` when a write was
    killed (SIGKILL, power loss); a folder still being written by a live run is locked and
    kept. Returns one warning per leftover found."""
    parent = Path(parent)
    found = []
    try:
        names = sorted(n for n in os.listdir(parent) if n.startswith(".") and TMP in n)
    except OSError:
        return []
    for name in names:
        path = parent / name
        if path.is_symlink() or not path.is_dir():
            continue
        marker = read_marker(path)
        if marker is None:
            continue
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            continue
        try:
            if not _flock(fd, block=False):
                continue  # a live run is writing it
            left = _remove_own(path, marker.get("files", []))
        finally:
            os.close(fd)
        if left:
            found.append(f"kept '{path}', left by an interrupted write: it holds files optisite did not write "
                         f"({', '.join(left[:3])}{', ...' if len(left) > 3 else ''}); move them where they belong")
        else:
            found.append(f"removed '{path}', a temporary folder left by an interrupted write")
    return found


# ---------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------

def _target(out: Path, kind: str) -> Path:
    """Where ``out`` is written: through a link to a folder optisite wrote, else ``out``."""
    if os.path.islink(out) and os.path.isdir(out) and (read_marker(out) or {}).get("kind") == kind:
        return _real(out)
    return out


def _make_temp(parent: Path, name: str, kind: str, files: Iterable[str], tag: str = "") -> tuple[Path, int]:
    """A marked, locked temporary sibling folder (mode from the umask)."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{name[:_SHORT]}{TMP}{tag}", dir=parent))
    fd = os.open(tmp, os.O_RDONLY)
    _flock(fd, block=False)
    os.chmod(tmp, folder_mode())
    _write_marker(tmp, kind, files)
    return tmp, fd


def write_folder(out: str | Path, fill: Callable[[Path], None], *, kind: str, own: Iterable[str],
                 force: bool = False, reads: Iterable[str | Path] = ()) -> Path:
    """Write the folder ``out`` of ``kind``: ``fill(tmp)`` writes ``own`` files into a temporary
    sibling, which is renamed into place. An existing ``out`` needs ``force`` and optisite's
    marker; the user's files in it are carried over. Two runs writing one new ``out``: the
    second fails (the existence check and the rename are one atomic step)."""
    out = Path(out)
    for w in check_writable(out, force=force, reads=reads, kind=kind):
        warnings.warn(w, LeftoverWarning, stacklevel=2)
    real = _target(out, kind)
    own = set(own) | {MARKER}
    real.parent.mkdir(parents=True, exist_ok=True)
    with signals_deferred():
        tmp, fd = _make_temp(real.parent, real.name, kind, own)
        done = False
        filled = set(own)
        try:
            fill(tmp)
            filled |= set(os.listdir(tmp))
            _write_marker(tmp, kind, filled)
            with _locked(real.parent):
                if os.path.lexists(real):
                    if not force:
                        raise OutputExistsError(_appeared(out))
                    _check_replaceable(_real(real), str(out), kind)
                    _swap(real, tmp, own)
                else:
                    try:
                        _rename_noreplace(tmp, real)
                    except FileExistsError:
                        raise OutputExistsError(_appeared(out)) from None
            done = True
            _note_written(out)
        finally:
            os.close(fd)
            if not done and tmp.exists():
                _remove_own(tmp, filled)  # what fill wrote; never a user's file moved in by the swap
    return out


def _appeared(out: Path) -> str:
    return (f"output folder '{out}' was written by another run while this one was working; this "
            "run's result was not written: give --force to replace it, or choose another --out")


def _swap(out: Path, tmp: Path, own: set[str]) -> None:
    """Replace folder ``out`` by ``tmp``, carrying the user's files over; undo on failure.

    The user's files are moved into ``tmp`` first, so the new folder holds them the moment
    it appears; the old folder is renamed aside (``.NAME.tmp-old-*``, locked) and then
    only optisite's files in it are deleted.
    """
    ours = own | set((read_marker(out) or {}).get("files", [])) | {MARKER}
    moved: list[str] = []
    fd = os.open(out, os.O_RDONLY)
    try:
        _flock(fd, block=False)  # renamed aside it is a locked leftover, not a dead one
        aside = out.parent / f".{out.name[:_SHORT]}{TMP}old-{secrets.token_hex(4)}"
        try:
            for child in sorted(os.listdir(out)):
                if child not in ours and not os.path.lexists(tmp / child):
                    os.rename(out / child, tmp / child)
                    moved.append(child)
            _rename_noreplace(out, aside)
            try:
                _rename_noreplace(tmp, out)
            except BaseException:
                os.rename(aside, out)
                raise
        except BaseException:
            for name in moved:
                if os.path.lexists(tmp / name):
                    os.rename(tmp / name, out / name)
            raise
        left = _remove_own(aside, ours)
        if left:
            warnings.warn(f"kept '{aside}': it holds files optisite did not write ({', '.join(left[:3])})",
                          LeftoverWarning, stacklevel=3)
    finally:
        os.close(fd)


def write_files(out: str | Path, contents: Mapping[str, str | bytes], *, kind: str, force: bool = False,
                reads: Iterable[str | Path] = ()) -> Path:
    """Write the files ``contents`` (name -> text or bytes) into folder ``out``: a new folder
    is written whole (as ``write_folder``); into an existing one each file is replaced
    atomically, all of them with signals held (existing ones only with ``force`` and in a
    folder optisite wrote)."""
    out = Path(out)
    for w in check_writable(out, force=force, reads=reads, kind=kind, files=list(contents)):
        warnings.warn(w, LeftoverWarning, stacklevel=2)

    def fill(tmp: Path) -> None:
        for name, data in contents.items():
            _write_bytes(tmp / name, data)

    if not os.path.lexists(out):
        try:
            return write_folder(out, fill, kind=kind, own=list(contents), reads=reads)
        except OutputExistsError:  # a folder appeared meanwhile: write into it as below
            check_writable(out, force=force, reads=reads, kind=kind, files=list(contents))
    real = _real(out)
    with signals_deferred():
        for name, data in contents.items():
            _replace_file(real / name, data, replace=force, shown=out / name)
        _note_written(out)
    return out


def check_file_writable(path: str | Path, *, force: bool = False, reads: Iterable[str | Path] = ()) -> Path:
    """Refuse, before any work, an output file the write would fail on or that is (inside)
    an input the run reads; returns the path."""
    try:
        return _check_file_writable(Path(path), force, reads)
    except OSError as exc:
        raise OutputPathError(f"--out '{path}' cannot be used ({exc.strerror or type(exc).__name__}); "
                              "choose another --out") from None


def _check_file_writable(path: Path, force: bool, reads) -> Path:
    if path.name in ("", ".", ".."):
        raise OutputPathError(f"--out '{path}' names no file; give a file name")
    _check_names(Path(os.path.abspath(path)), str(path))
    real = _real(path)
    for r in reads:
        rr = _real(Path(r))
        if real == rr or rr in real.parents:
            raise OutputPathError(f"--out '{path}' {'is' if real == rr else 'lies inside'} '{r}' that this "
                                  "run reads; choose an --out outside it")
    if real.is_dir():
        raise OutputExistsError(f"--out '{path}' is a folder; give a file path")
    if os.path.lexists(path) and not force:
        raise OutputExistsError(f"'{path}' exists; add --force to overwrite it")
    anchor = _nearest_existing(Path(os.path.abspath(path)).parent)
    if not anchor.is_dir():
        raise OutputPathError(f"--out '{path}': '{anchor}' is not a folder (a file, or a link to nothing)")
    why = _unwritable(anchor)
    if why:
        raise OutputPathError(f"--out '{path}': cannot write in '{anchor}' ({why}); choose another --out")
    return path


def write_file(path: str | Path, data: str | bytes, *, force: bool = True,
               reads: Iterable[str | Path] = ()) -> Path:
    """Write one file atomically (mode from the umask). Without ``force`` an existing file is
    refused, atomically too: of two runs creating it, the second fails."""
    path = check_file_writable(path, force=force, reads=reads)
    real = _real(path)
    real.parent.mkdir(parents=True, exist_ok=True)
    with signals_deferred():
        _replace_file(real, data, replace=force, shown=path)
        _note_written(path)
    return path


def _write_bytes(path: Path, data: str | bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data.encode("utf-8") if isinstance(data, str) else data)


def _replace_file(path: Path, data: str | bytes, *, replace: bool = True, shown: Path | None = None) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name[:_SHORT]}{TMP}", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.chmod(tmp, file_mode())
        if replace:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)  # fails if the file exists, atomically
            except FileExistsError:
                raise OutputExistsError(f"'{shown or path}' exists (another run wrote it meanwhile?); "
                                        "add --force to overwrite it") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


__all__ = ["MARKER", "OutputPathError", "LeftoverWarning", "check_writable", "clean_leftovers",
           "write_folder", "write_files", "write_file", "check_file_writable", "read_marker", "signals_deferred", "umask"]
