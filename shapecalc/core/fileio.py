"""Writing files so that nothing the user had is ever damaged.

Every file shapecalc writes (graphs, reports, spec files, training outputs) goes through here:
it is written to a temporary file in the target's own folder and renamed over the target only
once complete, so a crash, Ctrl-C or full disk leaves either the old file or the new one, never
a torn one, and never a stray temporary. Targets that are not regular files (a FIFO, a device,
a symbolic link, a folder) are refused rather than replaced.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

from shapecalc.core.errors import UsageError
from shapecalc.core.safetext import StreamFailed, printable


class OutputError(UsageError):
    """An output cannot be written; the message names the parameter (``param``) and why.

    ``reason`` is the message without the parameter's name, so that a command line can name
    its own flag instead (:meth:`for_param`: the library's ``path`` is ``-o`` for one command
    and ``--graph`` for another) without taking the text apart.
    """

    def __init__(self, message: str, *, param: str | None = None, path: str | None = None,
                 reason: str | None = None, while_writing: bool = False) -> None:
        super().__init__(message)
        self.param = param
        self.path = path
        self.reason = reason if reason is not None else message
        #: True when the target was fine and the write itself failed (a full disk): the work
        #: failed (exit 1), the command line did not (exit 2)
        self.while_writing = while_writing

    @classmethod
    def of(cls, param: str, reason: str, path: str | None = None,
           while_writing: bool = False) -> "OutputError":
        """The error ``"{param}: {reason}"``."""
        return cls(f"{param}: {reason}", param=param, path=path, reason=reason,
                   while_writing=while_writing)

    def for_param(self, param: str) -> "OutputError":
        """The same error naming ``param`` (a command-line flag) instead."""
        return OutputError.of(param, self.reason, self.path, self.while_writing)


def os_error_reason(err: OSError) -> str:
    if err.errno == errno.ENOSPC:
        return "no space left on the device"
    if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return "permission denied (read-only or not yours)"
    if err.errno == errno.ENOENT:
        return "the folder does not exist"
    if err.errno == errno.ENOTDIR:
        return "a part of the path is a file, not a folder"
    return err.strerror or type(err).__name__


def check_target(path: str | os.PathLike, param: str = "output") -> Path:
    """Refuse, before any work is done, a target that cannot be written or must not be replaced."""
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.exists():
        raise OutputError.of(param, f"folder {str(parent)!r} does not exist", str(path))
    if not parent.is_dir():
        raise OutputError.of(param, f"{str(parent)!r} is a file, not a folder", str(path))
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        st = None
    except OSError as err:
        raise OutputError.of(param, f"{path}: {os_error_reason(err)}", str(path)) from None
    if st is not None:
        if stat.S_ISDIR(st.st_mode):
            raise OutputError.of(param, f"{str(path)!r} is a folder; give a file name", str(path))
        if stat.S_ISLNK(st.st_mode):
            raise OutputError.of(param, f"{str(path)!r} is a symbolic link; refusing to replace it "
                                 "(write to the link's target by name instead)", str(path))
        if not stat.S_ISREG(st.st_mode):
            raise OutputError.of(param, f"{str(path)!r} is not a regular file (a FIFO, socket or "
                                 "device); refusing to replace it (use '-' for standard output)", str(path))
        if not os.access(path, os.W_OK):
            raise OutputError.of(param, f"{str(path)!r} is read-only; refusing to replace it", str(path))
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError.of(param, f"folder {str(parent)!r} is not writable", str(path))
    return path


@contextmanager
def atomic_path(path: str | os.PathLike, param: str = "output") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed over ``path``.

    On any failure (an exception, KeyboardInterrupt included) the temporary is removed and
    ``path`` is left as it was. ``OSError`` becomes one :class:`OutputError` line naming ``param``.
    """
    target = check_target(path, param)
    parent = target.parent if str(target.parent) else Path(".")
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=parent)
    except OSError as err:
        raise OutputError.of(param, f"cannot write in {str(parent)!r}: {os_error_reason(err)}", str(target)) from None
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 is for the temporary, not the result
        os.replace(tmp, target)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise OutputError.of(param, f"cannot write {str(target)!r}: {os_error_reason(err)}", str(target),
                             while_writing=True) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes(path: str | os.PathLike, data: bytes, param: str = "output") -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path, param) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    return Path(path)


def write_text(path: str | os.PathLike, text: str, param: str = "output") -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return write_bytes(path, text.encode("utf-8"), param)


def write_stdout(data: str | bytes, param: str = "output") -> None:
    """Write ``data`` to standard output (the ``-`` target) now, text made
    :func:`~shapecalc.core.safetext.printable`, so that a full disk
    (``> /dev/full``) or a closed stdout is one
    :class:`~shapecalc.core.safetext.StreamFailed` line rather than a traceback at exit.

    The bytes go straight to the file descriptor: nothing is left in Python's buffer to fail
    again at interpreter exit. A closed pipe stays a :class:`BrokenPipeError`, for the command
    line to end on quietly.
    """
    import sys

    if isinstance(data, str):
        data = printable(data)
    stream = sys.stdout
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):  # a captured stream (tests, notebooks)
        fd = None
    try:
        stream.flush()
        if fd is None:
            if isinstance(data, str):
                stream.write(data)
            else:
                stream.buffer.write(data)
            stream.flush()
            return
        view = memoryview(data.encode("utf-8") if isinstance(data, str) else data)
        while view:
            view = view[os.write(fd, view):]
    except (BrokenPipeError, StreamFailed):
        raise
    except OSError as err:  # full (/dev/full) or closed (>&-): the work failed, exit 1
        raise StreamFailed(stream, err) from None


class NotRegularFile(OSError):
    """An input path names a FIFO, a device, a socket or a folder: reading it could block
    forever (a FIFO with no writer), never end (``/dev/zero``) or mean nothing (a folder)."""

    def __init__(self, path: str | os.PathLike, kind: str) -> None:
        super().__init__(errno.EINVAL, f"is a {kind}, not a regular file", str(path))
        self.kind = kind

    def __str__(self) -> str:
        return f"{self.filename}: {self.strerror}"


def _kind(mode: int) -> str:
    for test, word in ((stat.S_ISDIR, "folder"), (stat.S_ISFIFO, "FIFO (named pipe)"),
                       (stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device"),
                       (stat.S_ISSOCK, "socket")):
        if test(mode):
            return word
    return "special file"


def open_input(path: str | os.PathLike) -> BinaryIO:
    """Open a file given as input (spec, checkpoint, data, config) for binary reading, refusing
    anything but a regular file with :class:`NotRegularFile`. The open itself does not block
    (``O_NONBLOCK``: a FIFO with no writer opens at once) and the check is made on the opened
    descriptor, so a FIFO swapped in after a check by name is still refused."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFile(path, _kind(mode))
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def check_input(path: str | os.PathLike) -> Path:
    """Refuse an input path that is not a regular file (:func:`open_input`), without reading it."""
    open_input(path).close()
    return Path(path)


def write_with(path: str | os.PathLike, writer: Callable[[Path], None], param: str = "output") -> Path:
    """Let ``writer`` fill a temporary file (``torch.save``, ``savefig``, ``dot -o``), then rename."""
    with atomic_path(path, param) as tmp:
        writer(tmp)
    return Path(path)


__all__ = ["NotRegularFile", "OutputError", "check_input", "open_input", "atomic_path", "check_target", "os_error_reason", "write_bytes", "write_stdout", "write_text", "write_with"]
