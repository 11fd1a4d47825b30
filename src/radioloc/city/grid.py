"""The map grid and radioloc's one coordinate convention.

Every map is a 256 x 256 array indexed ``[row, col]`` at 1 m per pixel, as in RadioMapSeer and RadioLocSeer.

Positions are ``(row, col)`` in metres, zero-based, continuous: the centre of pixel ``[i, j]`` is the point
``(i, j)`` and the pixel covers ``[i - 0.5, i + 0.5] x [j - 0.5, j + 0.5]``. Building corners therefore lie on
half-integer points. Base stations and users sit at pixel centres, so their positions are integers.

The RadioLocSeer positions file stores 1-based ``(row, col)`` (MATLAB); the conversion happens only where that
file is read or written (:mod:`radioloc.datasets.positions`). Imported GeoJSON uses metric ``(x east, y north)``;
:mod:`radioloc.city.imports` maps ``x`` to ``col`` and ``y`` to ``row`` counted from the north edge, so a map
drawn with ``imshow`` has north up.
"""

from __future__ import annotations

MAP_SIZE = 256
"""Pixels per side of every map."""

PIXEL_METRES = 1.0
"""Side of one pixel in metres."""
