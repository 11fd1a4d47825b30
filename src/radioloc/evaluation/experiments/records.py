"""The result and cache files of an experiments folder, read back checked.

They are radioloc's own files, but a folder is resumed months later, copied between machines and sometimes edited
by hand: a value no experiment can produce (a negative error, a coverage above 1, a result of another scale) fails
here, naming the file and the field, instead of reaching the report or another experiment as a finding.

What a value may be is read from its name, the one convention every experiment follows: ``*_m``, ``*_db``, MAE,
RMSE, quantiles, times and counts are never negative; coverages, shares, rates and probabilities lie in [0, 1].
Signed quantities (``*_gain``, differences) carry other names and are only checked to be finite.
"""

from __future__ import annotations

import math
from pathlib import Path

from radioloc.errors import RadiolocError
from radioloc.io import read_json_object

NONNEGATIVE_NAMES = {"mae", "rmse", "median", "p90", "n", "k", "bs", "maps", "queries", "pixels", "links", "failures", "held", "cases", "epochs",
                     "seconds", "ratio", "ratio_to_better", "max_relative_change", "lr", "knn", "locunet"}  # fmt: skip
NONNEGATIVE_ENDINGS = ("_m", "_db", "_mae", "_rmse", "_median", "_p90", "_minutes", "_seconds", "_ms", "ms_per_query", "_queries", "_epochs", "_epoch",
                       "_trained", "_zero_shot")  # fmt: skip
FRACTION_PREFIXES = ("coverage",)
FRACTION_ENDINGS = ("_share", "_rate", "_probability")


LARGEST = {"_m": 1e6, "_db": 1e3}  # no error or distance of a city reaches 1,000 km, no pathloss difference 1,000 dB


def _largest(name: str) -> float:
    return next((limit for ending, limit in LARGEST.items() if name.endswith(ending)), math.inf)


def _kind(name: str) -> str | None:
    if name.startswith(FRACTION_PREFIXES) or name.endswith(FRACTION_ENDINGS):
        return "fraction"
    if "gain" in name or ("bias_cdf" in name and not name.endswith("_m")):
        return None
    if name in NONNEGATIVE_NAMES or name.endswith(NONNEGATIVE_ENDINGS):
        return "nonnegative"
    return None


def check_values(value: object, path: Path, field: str = "", kind: str | None = None) -> None:
    """Every number under ``value`` finite and within what its name allows (lists take their key's name)."""
    if isinstance(value, dict):
        for key, item in value.items():
            check_values(item, path, f"{field}.{key}" if field else str(key), _kind(str(key)))
            if key == "rows" and item == []:  # every experiment that writes rows writes at least one
                raise RadiolocError(
                    f"{path}: {field + '.' if field else ''}rows is empty, which no experiment writes (a damaged or edited file): delete it to recompute it"
                )
    elif isinstance(value, list):
        for index, item in enumerate(value):
            check_values(item, path, f"{field}[{index}]", kind)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        wrong = (
            "not finite" if not math.isfinite(value)
            else "negative" if kind == "nonnegative" and value < 0
            else "outside [0, 1]" if kind == "fraction" and not 0 <= value <= 1
            else f"above {_largest(field):g}" if abs(value) > _largest(field)
            else None
        )  # fmt: skip
        if wrong:
            raise RadiolocError(f"{path}: {field} = {value:g} is {wrong}, which no experiment writes (a damaged or edited file): delete it to recompute it")


def read_cached(path: Path, what: str = "cached result") -> dict:
    """A cached unit of work, its values checked."""
    value = read_json_object(path, what)
    check_values(value, path)
    return value


def read_result(path: Path, name: str, scale: str) -> dict:
    """An experiment's result file: of experiment ``name`` at ``scale`` (the folder's), its values checked."""
    result = read_json_object(path, "experiment result")
    found = (result.get("experiment"), result.get("scale"))
    if found != (name, scale):
        raise RadiolocError(
            f"{path}: a result of experiment {found[0]!r} at scale {found[1]!r}, not of {name!r} at this folder's scale {scale!r}: delete it to recompute it"
        )
    check_values(result, path)
    return result
