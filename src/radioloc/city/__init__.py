"""City geometry: building maps (procedural or imported), cars, and the coordinate convention."""

from radioloc.city.grid import MAP_SIZE, PIXEL_METRES

__all__ = ["MAP_SIZE", "PIXEL_METRES"]
