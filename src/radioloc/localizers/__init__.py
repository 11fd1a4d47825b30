"""Inference, one home for every localizer: the interface and estimate type (:mod:`.base`), the uncertainty
radii (:mod:`.uncertainty`), the Bayesian grid posterior (:mod:`.bayes`), LocUNet inference (:mod:`.locunet`) and
the registry of names (:mod:`.registry`). Nothing here imports ``radioloc.training``."""

__all__ = ["LocalizationEstimate", "Localizer", "check_data", "localization_errors"]


def __getattr__(name: str):
    # imported on first use: the registry (and the command line's help) need none of the numerical code
    if name in __all__:
        from radioloc.localizers import base

        return getattr(base, name)
    raise AttributeError(f"module 'radioloc.localizers' has no attribute {name!r}")
