"""Ranges that every reader of user input checks against, in one place (the pathloss range a report may take
lives beside the gray levels: ``radioloc.datasets.localization.MIN_REPORTED_DB`` / ``MAX_REPORTED_DB``)."""

SEED_MAX = 2**32 - 1  # every seed radioloc takes: numpy, torch and numba all accept it
MAX_MAPS = 10_000  # maps of one dataset (the paper's RadioLocSeer has 701)
CELL_ID_MAX = 2**36 - 1  # a 3GPP NR cell identity has 36 bits
# the side of the 1 m raster a city import makes: 12 km is 144 M pixels, about 2.3 GB while the footprints are
# rasterized (a whole metropolis is cut into extracts first)
MAX_CITY_EXTENT_M = 12_000.0
RSS_DBM_RANGE = (-200.0, 60.0)  # a received signal strength a phone may report, in dBm (CLI --rss and the API alike)
MAX_LATITUDE = 85.0  # a deployment's origin: the local metric grid (pyproj) degenerates towards the poles
