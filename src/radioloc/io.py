"""Atomic file writes: a reader never sees a half-written file, and a killed job leaves only whole files."""

from __future__ import annotations

import contextlib
import io as _io
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image


def _file_mode() -> int:
    # mkstemp creates 0600 files; published data should get the usual permissions under the umask.
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


_MODE = _file_mode()


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, _MODE)
        os.replace(tmp, path)
    except BaseException as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(exc, OSError) and exc.filename is None:
            exc.filename = str(path)  # a full disk names the file it could not write
        raise


def json_safe(obj: Any) -> Any:
    """``obj`` with every non-finite float (NaN, infinity) as None: standard JSON, which strict parsers
    (JavaScript's ``JSON.parse``) accept; numpy scalars and arrays as plain numbers and lists."""
    if isinstance(obj, dict):
        return {key: json_safe(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(value) for value in obj]
    if isinstance(obj, np.ndarray):
        return json_safe(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(json_safe(obj), indent=2, sort_keys=False, allow_nan=False) + "\n").encode())


def atomic_write_png(path: str | os.PathLike, image: np.ndarray) -> None:
    """Save a uint8 gray image as PNG (low compression: PNG encoding is on the dataset hot path)."""
    buffer = _io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8), mode="L").save(buffer, format="PNG", compress_level=1)
    atomic_write_bytes(path, buffer.getvalue())


def atomic_write_npy(path: str | os.PathLike, array: np.ndarray) -> None:
    """One array as ``.npy`` (no pickles), written atomically: readers may memory-map it."""
    buffer = _io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    atomic_write_bytes(path, buffer.getvalue())


NUMPY_READ_ERRORS = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile)  # what np.load raises on a bad file


def numpy_read_reason(exc: BaseException) -> str:
    """Why ``np.load`` refused a file, in words (numpy calls any file that is not ``.npy`` / ``.npz`` "pickled")."""
    text = str(exc)
    if "pickled" in text:
        return "not a NumPy .npy/.npz file"
    if isinstance(exc, KeyError):
        return f"no array {text}"
    return (text.splitlines()[0][:120] if text else "") or type(exc).__name__


def read_json(path: str | os.PathLike, missing: str | None = None) -> Any:
    """A JSON file, or a one-line :class:`RadiolocError`: ``missing`` (default "PATH: file not found") when it does
    not exist, "PATH: not valid JSON (...)" when it cannot be parsed."""
    from radioloc.errors import RadiolocError

    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise RadiolocError(missing or f"{path}: file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RadiolocError(f"{path}: not valid JSON ({exc})") from None


def read_json_object(path: str | os.PathLike, what: str) -> dict:
    """A JSON object radioloc wrote (a cached result, a scale record), or one line naming the file and saying how
    to recover (delete it: the job recomputes it) when it is corrupt or not an object."""
    from radioloc.errors import RadiolocError

    data = read_json(path, missing=f"{path}: missing {what}")
    if not isinstance(data, dict):
        raise RadiolocError(f"{path}: corrupt {what} (a JSON object is expected); delete it to recompute it")
    return data


def atomic_write_npz(path: str | os.PathLike, **arrays: np.ndarray) -> None:
    buffer = _io.BytesIO()
    np.savez(buffer, **arrays)
    atomic_write_bytes(path, buffer.getvalue())


def contained(root: str | os.PathLike, rel: str, source: str) -> Path:
    """``root / rel`` for a path ``rel`` read from a file radioloc did not just write (``source`` names it), or a
    one-line error when it would leave ``root``: absolute, with ``..``, or through a link that points outside.
    What a state file names is resolved before anything is read, written or removed there."""
    from radioloc.errors import RadiolocError

    if not isinstance(rel, str) or not rel or "\x00" in rel:
        raise RadiolocError(f"{source}: entry {rel!r} is not a relative path")
    if Path(rel).is_absolute() or ".." in Path(rel).parts:
        raise RadiolocError(f"{source}: entry {rel!r} leaves {root} (absolute, or with '..'); refused")
    base = Path(root).resolve()
    target = (base / rel).resolve()
    if not target.is_relative_to(base):
        raise RadiolocError(f"{source}: entry {rel!r} resolves to {target}, outside {root}; refused")
    return Path(root) / rel


def check_output_path(path: str | os.PathLike, kind: str = "file") -> None:
    """Refuse, before any work, an output ``path`` (a ``kind`` of "file" or "folder") that cannot be written: the
    other kind in its place, a file where a parent folder should be, or a place this process cannot write. Writes
    nothing: the test is a temporary file in the nearest existing folder, removed at once."""
    from radioloc.errors import RadiolocError

    path = Path(path)
    if kind == "file" and path.is_symlink():  # an atomic replace would replace the link, not what it points to
        raise RadiolocError(f"{path}: is a symbolic link; give the path of the file it points to")
    if path.exists():
        if kind == "file" and not path.is_dir() and not path.is_file():
            raise RadiolocError(f"{path}: is not a regular file (a device, a pipe or a socket)")
        if kind == "file" and path.is_dir():
            raise RadiolocError(f"{path}: is a folder, a file is expected here")
        if kind == "folder" and not path.is_dir():
            raise RadiolocError(f"{path}: is a file, a folder is expected here")
    probe_dir = path if kind == "folder" and path.is_dir() else path.parent
    while not probe_dir.exists():
        probe_dir = probe_dir.parent
    if not probe_dir.is_dir():
        raise RadiolocError(f"{path}: {probe_dir} is a file, not a folder")
    try:
        with tempfile.TemporaryFile(dir=probe_dir):
            pass
    except OSError as exc:
        raise RadiolocError(f"{path}: cannot write in {probe_dir} ({exc.strerror})") from None
    if path.exists() and kind == "file" and not os.access(path, os.W_OK):
        raise RadiolocError(f"{path}: the file is not writable")


LOCK_FILE = ".radioloc.lock"


@contextlib.contextmanager
def folder_lock(root: str | os.PathLike, what: str, shared: bool = False):
    """Hold ``root`` for one writer: a second radioloc process that wants to write into it refuses at once with a
    one-line error instead of mixing its files with the first one's. The lock (``flock``) goes with the process, so
    a killed run leaves nothing to clean up. ``shared``: a reader (no writer meanwhile, other readers welcome),
    which opens the lock read-only, so that a read-only dataset can be read."""
    import fcntl

    from radioloc.errors import RadiolocError

    root = Path(root)
    if shared:
        if not (root / LOCK_FILE).exists():  # never written by radioloc since the lock existed: nobody is writing
            yield root
            return
        fd = os.open(root / LOCK_FILE, os.O_RDONLY)
    else:
        root.mkdir(parents=True, exist_ok=True)
        fd = os.open(root / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
            raise RadiolocError(
                f"{root}: another radioloc process{f' (pid {holder})' if holder else ''} is writing this {what}; wait for it to finish or choose another folder"
            ) from None
        if not shared:
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield root
    finally:
        os.close(fd)


def check_state(schema, data: object, path: Path, what: str):
    """``data`` (parsed from ``path``) validated against the pydantic ``schema``, or a one-line error naming the
    file and the field: how every state file radioloc reads back is checked."""
    from pydantic import ValidationError

    from radioloc.errors import RadiolocError, first_validation_error

    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        field, message, _ = first_validation_error(exc)
        raise RadiolocError(f"{path}: corrupt {what} ({field or 'the whole file'}: {message})") from None


def read_state(schema, path: Path, what: str, remedy: str):
    """A JSON state file read through ``schema``; a corrupt one is one line that also says how to recover."""
    from radioloc.errors import RadiolocError

    try:
        return check_state(schema, read_json_object(path, what), path, what)
    except RadiolocError as exc:
        raise RadiolocError(f"{exc}; {remedy}") from None
