"""City geometry: building maps (procedural or imported), cars, and the coordinate convention."""

from radioloc.city.cars import CarConfig, place_cars
from radioloc.city.generator import CityConfig, CityMap, generate_city, rasterize
from radioloc.city.grid import MAP_SIZE, PIXEL_METRES
from radioloc.city.imports import load_building_png, load_geojson_footprints

__all__ = [
    "MAP_SIZE",
    "PIXEL_METRES",
    "CarConfig",
    "CityConfig",
    "CityMap",
    "generate_city",
    "load_building_png",
    "load_geojson_footprints",
    "place_cars",
    "rasterize",
]
