"""The paper's whole evaluation as named, resumable experiments (``radioloc experiments list / run``).

Importing this package registers every experiment (:data:`EXPERIMENTS`, in the order they run)."""

from radioloc.evaluation.experiments import estimates as _estimates  # noqa: F401
from radioloc.evaluation.experiments import ranging as _ranging  # noqa: F401  (registers its experiments)
from radioloc.evaluation.experiments import training as _training  # noqa: F401
from radioloc.evaluation.experiments.runner import EXPERIMENTS, Context, run_experiments
from radioloc.evaluation.experiments.scales import SCALES, Scale, get_scale

__all__ = ["EXPERIMENTS", "SCALES", "Context", "Scale", "get_scale", "run_experiments"]
