"""Every localizer by name: the one table the command line, the demo, evaluation and the benchmarks resolve.

A spec is ``NAME[:OPTION...]``, a LocUNet checkpoint (``*.pt``) or a likelihood calibration (``*.safetensors``),
each optionally followed by options:

- ``locunet``, ``locunet-robust``: the shipped LocUNet models, their quasi-heatmap the learned prior of the
  ``bayes-learned`` / ``bayes-learned-robust`` posterior (:mod:`radioloc.localizers.heatmap_prior`; a checkpoint
  without that fusion answers as ``:paper``); ``:paper`` the paper's answer, the centre of mass with the local
  refinement (:mod:`radioloc.localizers.locunet`); ``:network`` the centre of mass alone; ``:heatmap-radii`` the
  paper's answer with radii from the quasi-heatmap's spread where the checkpoint was also calibrated on a
  posterior's;
- ``bayes``, ``bayes-robust``: the grid posterior with the shipped calibration of each scenario; ``:median``
  answers with the posterior's spatial median; ``:fit`` calibrates on the evaluated dataset's training split
  instead (like kNN's k); ``:toa=SIGMA`` fuses the queries' ToA ranges (noise SIGMA m) into the posterior;
- ``bayes-learned``, ``bayes-learned-robust``: the same posterior, its likelihood counted per reliability bin of a
  learned error model (:mod:`radioloc.models.error_model`), nominal and robustness scenarios; the same options;
- ``knn``, ``knn-cond``, ``adaptive-knn``: the paper's fingerprinting baselines, fitted on the training split,
  searching the outdoor pixels of the UE box like ``bayes``; ``:region=map`` the paper's whole-map search,
  ``:region=outdoor`` every outdoor pixel;
- ``toa-pocs``, ``toa-sdp``, ``toa-rsdp1``, ``toa-rsdp2``, ``toa-bisection``, ``toa-mcc``: the ToA ranging
  baselines (queries need ranges attached); ``:b=M`` the NLOS bias bound, ``:sigma=M`` the range noise assumed;
  answers projected onto the UE box, ``:region=map`` not (the paper's).

Entries name their factory as ``module:function`` and are imported when resolved, as Python entry points are:
the registry sits below the stages that provide localizers (``baselines``) and imports none of them. Other
packages add localizers through the ``radioloc.localizers`` entry-point group (a factory
``f(name, options) -> Localizer``) or :func:`register`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING

from radioloc.errors import RadiolocError

if TYPE_CHECKING:  # the registry names localizers without importing them (help texts stay cheap)
    from radioloc.localizers.base import Localizer


@dataclass(frozen=True)
class LocalizerEntry:
    name: str
    factory: str | Callable  # "module:function" or a callable f(name, options) -> Localizer
    description: str
    needs_fit: bool  # fitted on the evaluated dataset's training split before use
    options: tuple[str, ...] = ()
    scenario: str = "any"  # what its shipped weights or calibration are for: nominal, robust, any (fitted per dataset), or ranging (ToA queries)


REGISTRY: dict[str, LocalizerEntry] = {}
LOCUNET_OPTIONS = ("paper", "network", "heatmap-radii")


def register(name: str, factory: str | Callable, description: str, needs_fit: bool, options: tuple[str, ...] = (), scenario: str = "any") -> None:
    REGISTRY[name] = LocalizerEntry(name, factory, description, needs_fit, options, scenario)


register(
    "locunet",
    "radioloc.localizers.heatmap_prior:shipped",
    "shipped LocUNet, nominal scenario (DPM reports): its quasi-heatmap the prior of the bayes-learned posterior",
    False,
    LOCUNET_OPTIONS,
    "nominal",
)
register(
    "locunet-robust",
    "radioloc.localizers.heatmap_prior:shipped",
    "shipped LocUNet, robustness scenario (IRT2cars reports): the prior of bayes-learned-robust",
    False,
    LOCUNET_OPTIONS,
    "robust",
)
register("bayes", "radioloc.localizers.bayes:shipped", "grid posterior, shipped nominal calibration", False, ("median", "fit", "toa="), "nominal")
register("bayes-robust", "radioloc.localizers.bayes:shipped", "grid posterior, shipped robustness calibration", False, ("median", "fit", "toa="), "robust")
register(
    "bayes-learned",
    "radioloc.localizers.bayes:shipped",
    "grid posterior with a learned radio-map error model, nominal",
    False,
    ("median", "fit", "toa="),
    "nominal",
)
register(
    "bayes-learned-robust",
    "radioloc.localizers.bayes:shipped",
    "grid posterior with the learned radio-map error model, robustness",
    False,
    ("median", "fit", "toa="),
    "robust",
)
register("knn", "radioloc.baselines.knn:make", "kNN fingerprinting, k by grid search", True, ("region=",))
register("knn-cond", "radioloc.baselines.knn:make", "kNN Cond.: a k per number of BSs above the floor", True, ("region=",))
register("adaptive-knn", "radioloc.baselines.knn:make", "adaptive kNN: a k per query", True, ("region=",))
for _method, _label in (("pocs", "POCS"), ("sdp", "SDP (Vaghefi)"), ("rsdp1", "robust SDP 1 (Wang)"), ("rsdp2", "robust SDP 2 (Chen)"),
                        ("bisection", "robust bisection (Tomic)"), ("mcc", "max. correntropy (Xiong)")):  # fmt: skip
    # scenario "ranging": they answer queries that carry ToA ranges, not the RSS-only queries of a scenario
    register(f"toa-{_method}", "radioloc.baselines.toa:make", f"ToA ranging: {_label}; :b=M bias bound, :sigma=M range noise, :region=map unclipped", True,
             ("b=", "sigma=", "region="), "ranging")  # fmt: skip

CHECKPOINT_FACTORIES = {
    ".pt": ("radioloc.localizers.heatmap_prior:shipped", LOCUNET_OPTIONS),
    ".safetensors": ("radioloc.localizers.bayes:from_calibration", ("median",)),
}


@dataclass
class ResolvedLocalizer:
    label: str  # how reports name it
    localizer: Localizer
    needs_fit: bool


def _plugins() -> None:
    for entry in entry_points(group="radioloc.localizers"):
        if entry.name not in REGISTRY:
            register(entry.name, entry.value, f"plugin {entry.value}", False)


def _load(factory: str | Callable) -> Callable:
    if callable(factory):
        return factory
    module, attribute = factory.split(":")
    return getattr(importlib.import_module(module), attribute)


def spec_help(shipped_only: bool = False) -> str:
    """What ``--model`` takes, from the registry: every name (``shipped_only``: those that need no fitting on the
    evaluated dataset) with its options, then the file forms."""
    _plugins()
    forms = []
    for name, entry in REGISTRY.items():
        if shipped_only and entry.needs_fit:
            continue
        options = " ".join(f":{option}V" if option.endswith("=") else f":{option}" for option in entry.options)
        forms.append(f"{name} ({options})" if options else name)
    return ", ".join(forms) + ", a LocUNet checkpoint (.pt) or a bayes calibration (.safetensors)"


def names(scenario: str | None = None) -> list[str]:
    """Registered names; with ``scenario`` (nominal, robust), those shipped for it and those fitted per dataset."""
    _plugins()
    return [name for name, entry in REGISTRY.items() if scenario is None or entry.scenario in (scenario, "any")]


def resolve_localizer(spec: str) -> ResolvedLocalizer:
    """The localizer a spec names (see the module docstring); one-line errors for unknown names and options."""
    _plugins()
    name, *options = spec.split(":")
    if not name:
        raise RadiolocError(f"--model {spec!r}: empty model name")
    if name in REGISTRY:
        entry = REGISTRY[name]
        allowed, factory, label = entry.options, entry.factory, spec
        needs_fit = entry.needs_fit or "fit" in options
    else:
        path = Path(name)
        if path.suffix not in CHECKPOINT_FACTORIES:
            raise RadiolocError(
                f"--model {spec!r}: not a known localizer ({', '.join(REGISTRY)}), a LocUNet checkpoint (.pt) or a bayes calibration (.safetensors)"
            )
        factory, allowed = CHECKPOINT_FACTORIES[path.suffix]
        needs_fit = False
        # training runs all write best.pt: their folder tells them apart
        shown = f"{path.parent.name}/{path.name}" if path.name in ("best.pt", "last.pt", "calibration.safetensors") and path.parent.name else path.name
        label = ":".join(["locunet" if path.suffix == ".pt" else "bayes", shown, *options])
    # an allowed option ending in "=" takes a value (toa-rsdp1:b=20)
    unknown = [o for o in options if o not in allowed and o.partition("=")[0] + "=" not in allowed]
    if unknown:
        hint = f"options: {', '.join(allowed)}" if allowed else "it takes no options"
        raise RadiolocError(f"--model {spec!r}: unknown option {unknown[0]!r} ({hint})")
    return ResolvedLocalizer(label, _load(factory)(name, tuple(options)), needs_fit)
