"""Inference, one home for every localizer: the interface and estimate type (:mod:`.base`), the uncertainty
radii (:mod:`.uncertainty`), the Bayesian grid posterior (:mod:`.bayes`), LocUNet inference (:mod:`.locunet`) and
the registry of names (:mod:`.registry`). Nothing here imports ``radioloc.training``."""

from radioloc.localizers.base import LocalizationEstimate, Localizer, check_data, localization_errors

__all__ = ["LocalizationEstimate", "Localizer", "check_data", "localization_errors"]
