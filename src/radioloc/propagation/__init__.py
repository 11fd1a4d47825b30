"""Radio-map simulators: the dominant-path model (DPM), time of arrival, and the gray-level convention."""

from radioloc.propagation.dpm import DominantPathModel, DominantPathSimulator, RadioMap, free_space_loss_db
from radioloc.propagation.graylevel import NOISE_FLOOR_DB, db_to_gray, gray_to_db

__all__ = [
    "DominantPathModel",
    "DominantPathSimulator",
    "RadioMap",
    "free_space_loss_db",
    "NOISE_FLOOR_DB",
    "db_to_gray",
    "gray_to_db",
]
