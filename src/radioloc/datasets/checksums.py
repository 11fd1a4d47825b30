"""Checksums of every file of a dataset (``checksums.json``, SHA-256), written by the commands that write the files
and checked before they skip anything: a rerun on a dataset with a damaged or replaced file stops with a one-line
error instead of reporting it ready, and ``radioloc dataset verify --repair`` removes what is damaged so that the
next run remakes it (map generation is deterministic per map, so the remade files are byte-identical)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from radioloc.errors import RadiolocError, first_validation_error
from radioloc.io import atomic_write_json, contained

CHECKSUMS = "checksums.json"
# Rewritten by every run, or not data: never checksummed. Map records (maps/*.json) are rewritten in place when a
# simulation is added (a run killed then would leave stale sums); they are validated when read instead.
UNTRACKED_FILES = {"manifest.json", CHECKSUMS, ".radioloc.lock", "estimate_stats.json"}
UNTRACKED_FOLDERS = {"figures", "maps"}


class ChecksumList(BaseModel):
    """``checksums.json`` as it must be read back: SHA-256 hex digests of relative paths inside the dataset."""

    model_config = ConfigDict(extra="forbid", strict=True)
    algorithm: str = Field(pattern="^sha256$")
    files: dict[str, str]


def read_checksums(root: Path) -> dict[str, str]:
    """``{relative path: digest}`` of ``root``'s checksum list ({} when there is none), every entry checked to be a
    path inside ``root`` with a SHA-256 digest: a list from elsewhere must not make ``--repair`` touch files
    outside the dataset."""
    path = root / CHECKSUMS
    if not path.exists():
        return {}
    try:
        listed = ChecksumList.model_validate_json(path.read_bytes())
    except ValidationError as exc:
        where, message, _ = first_validation_error(exc)
        raise RadiolocError(f"{path}: corrupt checksum list ({where or 'the file'}: {message}); delete it to trust the files as they are") from None
    except OSError as exc:
        raise RadiolocError(f"{path}: cannot read the checksum list ({exc.strerror})") from None
    for rel, digest in listed.files.items():
        contained(root, rel, str(path))
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise RadiolocError(f"{path}: files.{rel}: not a SHA-256 hex digest; delete the list to trust the files as they are")
    return listed.files


def _tracked_files(root: Path) -> list[Path]:
    files = []
    for path in root.rglob("*"):
        rel = path.relative_to(root)
        hidden = any(part.startswith(".") for part in rel.parts)  # lock, temporary files, a replacement's staging
        if path.is_file() and path.name not in UNTRACKED_FILES and not hidden and rel.parts[0] not in UNTRACKED_FOLDERS:
            files.append(rel)
    return sorted(files)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def record_checksums(root: Path) -> int:
    """Checksum every data file now in ``root`` (call after a verified run finished writing); returns the count."""
    files = {str(rel): sha256(root / rel) for rel in _tracked_files(root)}
    atomic_write_json(root / CHECKSUMS, {"algorithm": "sha256", "files": files})
    return len(files)


def damaged_files(root: Path) -> dict[str, str]:
    """``{relative path: problem}`` for every checksummed file that is missing or differs; {} when all match or
    when the dataset predates checksums."""
    problems = {}
    for rel, digest in read_checksums(root).items():
        file = root / rel
        if not file.is_file():
            problems[rel] = "missing"
        elif sha256(file) != digest:
            problems[rel] = "changed since it was written"
    return problems


def remade_when_missing(root: Path, rel: str) -> bool:
    """A missing file the writers remake on their own: estimates (``dataset estimate``), ``TxRx.mat`` and the files
    of a map without a record (``dataset generate``)."""
    parts = Path(rel).parts
    if rel == "TxRx.mat" or (len(parts) == 3 and parts[1] == "estimate"):
        return True
    m = map_of(rel)
    return m is not None and not (root / "maps" / f"{m}.json").exists()


def check_dataset(root: Path) -> None:
    """Refuse to continue a dataset whose files were damaged after they were written (changed, or gone where the
    run would not remake them)."""
    problems = {rel: what for rel, what in damaged_files(root).items() if what != "missing" or not remade_when_missing(root, rel)}
    if problems:
        first, what = next(iter(problems.items()))
        raise RadiolocError(
            f"{root}: {len(problems)} file(s) damaged ({first}: {what}); run `radioloc dataset verify {root} --repair`, then this command again"
        )


def map_of(rel: str) -> int | None:
    """The map a dataset file belongs to (None for dataset-wide files such as TxRx.mat)."""
    parts = Path(rel).parts
    stem = Path(rel).stem.split("_")[0].split(".")[0]
    if len(parts) >= 2 and stem.isdigit():
        return int(stem)
    return None


def forget(root: Path, folder: str) -> None:
    """Drop the sums of the files under ``folder`` (relative) before a writer replaces them on purpose (estimates
    of another model), so that a run killed midway does not read as damage."""
    path = root / CHECKSUMS
    if path.exists():
        listed = read_checksums(root)
        atomic_write_json(path, {"algorithm": "sha256", "files": {rel: d for rel, d in listed.items() if not rel.startswith(folder.rstrip("/") + "/")}})


def repair(root: Path, problems: dict[str, str]) -> list[int]:
    """Remove the damaged files and the records of their maps, so that ``dataset generate`` remakes those maps and
    ``dataset estimate`` their estimates; returns the maps to remake."""
    listed = read_checksums(root)  # every entry checked to stay inside root before anything is removed
    unknown = [rel for rel in problems if rel not in listed]
    if unknown:
        raise RadiolocError(f"{root}: {unknown[0]!r} is not in its checksum list; refused to remove it")
    maps = sorted({m for rel in problems if (m := map_of(rel)) is not None})
    for rel in problems:
        contained(root, rel, str(root / CHECKSUMS)).unlink(missing_ok=True)
    for m in maps:
        (root / "maps" / f"{m}.json").unlink(missing_ok=True)
    remaining = {rel: digest for rel, digest in listed.items() if rel not in problems}
    atomic_write_json(root / CHECKSUMS, {"algorithm": "sha256", "files": remaining})
    return maps
