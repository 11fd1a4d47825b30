"""Checksums of every file of a dataset (``checksums.json``, SHA-256), written by the commands that write the files
and checked before they skip anything: a rerun on a dataset with a damaged or replaced file stops with a one-line
error instead of reporting it ready, and ``radioloc dataset verify --repair`` removes what is damaged so that the
next run remakes it (map generation is deterministic per map, so the remade files are byte-identical)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from radioloc.errors import RadiolocError
from radioloc.io import atomic_write_json

CHECKSUMS = "checksums.json"
# Rewritten by every run, or not data: never checksummed. Map records (maps/*.json) are rewritten in place when a
# simulation is added (a run killed then would leave stale sums); they are validated when read instead.
UNTRACKED_FILES = {"manifest.json", CHECKSUMS, ".radioloc.lock", "estimate_stats.json"}
UNTRACKED_FOLDERS = {"figures", "maps"}


def _tracked_files(root: Path) -> list[Path]:
    files = []
    for path in root.rglob("*"):
        rel = path.relative_to(root)
        if path.is_file() and path.name not in UNTRACKED_FILES and not path.name.startswith(".") and rel.parts[0] not in UNTRACKED_FOLDERS:
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
    path = root / CHECKSUMS
    if not path.exists():
        return {}
    try:
        listed = json.loads(path.read_text())["files"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise RadiolocError(f"{path}: corrupt checksum list ({exc}); delete it to trust the files as they are") from None
    problems = {}
    for rel, digest in listed.items():
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
        listed = json.loads(path.read_text())["files"]
        atomic_write_json(path, {"algorithm": "sha256", "files": {rel: d for rel, d in listed.items() if not rel.startswith(folder.rstrip("/") + "/")}})


def repair(root: Path, problems: dict[str, str]) -> list[int]:
    """Remove the damaged files and the records of their maps, so that ``dataset generate`` remakes those maps and
    ``dataset estimate`` their estimates; returns the maps to remake."""
    maps = sorted({m for rel in problems if (m := map_of(rel)) is not None})
    for rel in problems:
        (root / rel).unlink(missing_ok=True)
    for m in maps:
        (root / "maps" / f"{m}.json").unlink(missing_ok=True)
    listed = json.loads((root / CHECKSUMS).read_text())["files"]
    remaining = {rel: digest for rel, digest in listed.items() if rel not in problems}
    atomic_write_json(root / CHECKSUMS, {"algorithm": "sha256", "files": remaining})
    return maps
