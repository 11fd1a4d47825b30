"""Ray-traced radio maps with Sionna RT: reflections (up to ``max_depth`` interactions) and edge diffraction.

A :class:`RayTracedScene` is one city map turned into a Sionna RT scene (buildings extruded to
``building_height_m``, or per-building heights, optional 2 x 5 x 1.5 m cars, a ground plane, ITU concrete;
:mod:`radioloc.propagation.scene3d`). The scene is built once per map and every transmitter of that map is
solved on it; :class:`RayTracer` holds one ``RadioMapSolver`` for the whole process, so Dr.Jit's compiled
kernels are reused from map to map (and cached on disk under ``~/.drjit`` across runs).

The solver shoots ``samples_per_tx`` rays per transmitter and averages the path gain of the rays that cross
each cell of the measurement plane (Monte-Carlo integration, so a map carries sampling noise and cells no ray
reached, read as "below the noise floor"). Defaults, chosen from measurements on this 2-core CPU
(``benchmarks/raytracing.py``): Tx 3 m above ground, measurement plane at 1.5 m (a Tx in the plane leaves a
hole around itself: rays have to cross the plane to be counted), 2 m cells, upsampled to the 1 m grid
(each 2 m cell gives its four pixels; a 1 m grid needs 4x the rays for the same noise), depth 2, diffraction on.
A ray tracer computes on one thread, so that its maps are reproducible bit for bit; parallel work is one
process per core (the Dask workers of ``dataset generate``).

Pathloss is ``10 log10(path gain)`` in dB (negative), NaN inside buildings (and cars, when they are in the
scene), ``-inf`` where no ray arrived.
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from radioloc.errors import RadiolocError
from radioloc.propagation.scene3d import (
    MeshBuilder,
    building_footprints,
    building_heights,
    car_boxes,
    write_ply,
)
from radioloc.sionna_runtime import sionna_rt


@dataclass(frozen=True)
class RayTracingConfig:
    """Scene and solver settings (saved in the manifest of every dataset they produced)."""

    frequency_hz: float = 5.9e9
    building_height_m: float = 25.0
    car_height_m: float = 1.5
    tx_height_m: float = 3.0
    rx_height_m: float = 1.5
    max_depth: int = 2
    diffraction: bool = True
    samples_per_tx: int = 2_000_000
    cell_size_m: int = 2
    material: str = "concrete"
    outline_tolerance_m: float = 0.75
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


_XML = """<scene version="2.1.0">
  <bsdf type="itu-radio-material" id="wall">
    <string name="type" value="{material}"/>
    <float name="thickness" value="0.2"/>
  </bsdf>
{shapes}
</scene>
"""
_SHAPE = """  <shape type="ply" id="{name}">
    <string name="filename" value="{filename}"/>
    <boolean name="face_normals" value="true"/>
    <ref id="wall" name="bsdf"/>
  </shape>"""


class RayTracedScene:
    """One map as a Sionna RT scene; :meth:`pathloss` solves transmitters on it."""

    def __init__(
        self,
        buildings: np.ndarray,
        cars: np.ndarray | None = None,
        heights: np.ndarray | None = None,
        config: RayTracingConfig | None = None,
        solver=None,
    ):
        rt = sionna_rt()
        self.config = config or RayTracingConfig()
        buildings = np.asarray(buildings) != 0
        if buildings.ndim != 2 or buildings.shape[0] != buildings.shape[1]:
            raise RadiolocError(f"building map must be a square 2-D array, got shape {buildings.shape}")
        if self.config.cell_size_m not in (1, 2, 4) or buildings.shape[0] % self.config.cell_size_m:
            raise RadiolocError(f"cell_size_m must be 1, 2 or 4 and divide the map size, got {self.config.cell_size_m}")
        self.size = buildings.shape[0]
        self.obstacles = buildings | (np.asarray(cars) != 0 if cars is not None else False)
        c = self.config
        meshes = {}
        footprints = building_footprints(buildings, c.outline_tolerance_m)
        mesh = MeshBuilder()
        for footprint, height in zip(footprints, building_heights(buildings, footprints, heights, c.building_height_m)):
            mesh.prism(footprint, 0.0, height)
        meshes["buildings"] = mesh
        if cars is not None and np.any(cars):
            mesh = MeshBuilder()
            for car in car_boxes(cars):
                mesh.prism(car, 0.0, c.car_height_m)
            meshes["cars"] = mesh
        ground = MeshBuilder()
        ground.triangle((0, 0, 0), (self.size, 0, 0), (self.size, self.size, 0))
        ground.triangle((0, 0, 0), (self.size, self.size, 0), (0, self.size, 0))
        meshes["ground"] = ground
        with tempfile.TemporaryDirectory(prefix="radioloc-scene-") as folder:
            shapes = []
            for name, builder in meshes.items():
                vertices, faces = builder.arrays()
                if len(faces) == 0:
                    continue
                write_ply(Path(folder) / f"{name}.ply", vertices, faces)
                shapes.append(_SHAPE.format(name=name, filename=str(Path(folder) / f"{name}.ply")))
            xml = Path(folder) / "scene.xml"
            xml.write_text(_XML.format(material=c.material, shapes="\n".join(shapes)))
            try:
                self.scene = rt.load_scene(str(xml), merge_shapes=False)
            except Exception as exc:
                raise RadiolocError(f"Sionna RT could not load the scene built from this map ({str(exc).splitlines()[0]})") from None
        self.scene.frequency = c.frequency_hz
        array = rt.PlanarArray(num_rows=1, num_cols=1, vertical_spacing=0.5, horizontal_spacing=0.5, pattern="iso", polarization="V")
        self.scene.tx_array = array
        self.scene.rx_array = array
        self.solver = solver or rt.RadioMapSolver()

    def pathloss(self, txs: np.ndarray, seed: int | None = None) -> np.ndarray:
        """(n, H, W) float32 pathloss in dB for transmitters at pixels ``txs`` (n, 2) (row, col)."""
        rt = sionna_rt()
        import mitsuba as mi

        txs = np.asarray(txs, dtype=np.int64).reshape(-1, 2)
        c = self.config
        for row, col in txs:
            if not (0 <= row < self.size and 0 <= col < self.size):
                raise RadiolocError(f"transmitter ({row}, {col}) is outside the {self.size} x {self.size} map")
            if self.obstacles[row, col]:
                raise RadiolocError(f"transmitter ({row}, {col}) is inside an obstacle")
        names = [f"tx{k}" for k in range(len(txs))]
        for name, (row, col) in zip(names, txs):
            self.scene.add(rt.Transmitter(name=name, position=mi.Point3f(float(col) + 0.5, float(row) + 0.5, float(c.tx_height_m))))
        try:
            half = self.size / 2
            radio_map = self.solver(
                self.scene,
                center=mi.Point3f(half, half, c.rx_height_m),
                orientation=mi.Point3f(0, 0, 0),
                size=mi.Point2f(self.size, self.size),
                cell_size=mi.Point2f(c.cell_size_m, c.cell_size_m),
                samples_per_tx=c.samples_per_tx,
                max_depth=c.max_depth,
                diffraction=c.diffraction,
                seed=c.seed if seed is None else seed,
            )
            gain = np.asarray(radio_map.path_gain, dtype=np.float64)
        finally:
            for name in names:
                self.scene.remove(name)
        if c.cell_size_m > 1:
            gain = np.repeat(np.repeat(gain, c.cell_size_m, axis=1), c.cell_size_m, axis=2)
        with np.errstate(divide="ignore"):
            pathloss = 10.0 * np.log10(gain)
        pathloss[:, self.obstacles] = np.nan
        return pathloss.astype(np.float32)


class RayTracer:
    """One solver for a whole run: ``RayTracer(config).scene(buildings, cars).pathloss(txs)``."""

    def __init__(self, config: RayTracingConfig | None = None):
        self.config = config or RayTracingConfig()
        self._solver = sionna_rt().RadioMapSolver()
        # One Dr.Jit thread: with several, the rays' contributions are summed in whatever order the threads
        # finish, and a map differs from run to run in its last bits (now and then by a gray level). Maps are
        # made in parallel by processes instead (Dask workers, radioloc.cluster), so they are the same bytes
        # whatever the number of workers.
        import drjit

        drjit.set_thread_count(1)

    def scene(self, buildings: np.ndarray, cars: np.ndarray | None = None, heights: np.ndarray | None = None) -> RayTracedScene:
        return RayTracedScene(buildings, cars, heights, self.config, self._solver)


_TRACERS: dict[str, RayTracer] = {}  # per process: the ray tracer of each configuration, kept for the run


def cached_tracer(config: RayTracingConfig | None = None) -> RayTracer:
    """The process's ray tracer for ``config`` (its solver and compiled kernels are reused by every later task)."""
    config = config or RayTracingConfig()
    key = repr(config)
    if key not in _TRACERS:
        _TRACERS[key] = RayTracer(config)
    return _TRACERS[key]
