"""The scales the paper's evaluation runs at: how big the datasets are, how many queries each table uses and how
long each network trains. One typed preset per scale, saved beside the results it produced."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from radioloc.datasets.protocol import ProtocolConfig
from radioloc.errors import RadiolocError


@dataclass(frozen=True)
class Scale:
    name: str
    description: str
    maps: int  # maps of the evaluation dataset (split 69/15/15 as RadioLocSeer's)
    seed: int  # its seed: none of the shipped models or calibrations was fitted on it
    protocol: ProtocolConfig = field(default_factory=ProtocolConfig)
    simulations: tuple[str, ...] = ("DPM", "IRT2cars")  # nominal truth, and the robustness scenario's
    queries: int = 2000  # test queries every method of a table answers (the same ones); 0 = all
    calibration_queries: int = 1000  # validation queries that calibrate the radii of a method fitted here
    # training experiments (Tables VI, VII, IX, Fig. 4): LocUNet runs of this many epochs of this many samples
    train_preset: str = "cpu"
    train_epochs: int = 6
    train_samples_per_epoch: int = 8192
    label_noise_m: tuple[float, ...] = (0.0, 2.0, 5.0, 10.0, 15.0, 20.0, 25.0)  # Table VI
    tx_distortion_m: tuple[float, ...] = (5.0, 10.0, 15.0, 20.0, 25.0)  # Table VII
    # Table IX cells (activation, loss, city map, Tx maps): every activation and loss with both input maps, and the
    # input ablations with LeakyReLU (enough for Table X's LeakyReLU row); ``paper`` runs the full 32
    ablation_grid: tuple[tuple[str, str, bool, bool], ...] = (
        *((a, loss, True, True) for a in ("leaky_relu", "relu", "softmax", "sigmoid") for loss in ("mae", "mse")),
        *(("leaky_relu", loss, c, t) for c, t in ((False, True), (True, False), (False, False)) for loss in ("mae", "mse")),
    )  # fmt: skip
    heatmap_sigmas_m: tuple[float, ...] = (2.0, 4.0, 8.0, 16.0)  # Fig. 4

    def to_dict(self) -> dict:
        return asdict(self)


SCALES = {
    "smoke": Scale(
        "smoke", "minutes: a 4-map dataset, every experiment end to end (the test suite runs it)",
        maps=4, seed=7001, protocol=ProtocolConfig(candidates_per_map=10, sets_per_map=4, ues_per_map=30), queries=100,
        calibration_queries=200, train_epochs=1, train_samples_per_epoch=128, label_noise_m=(0.0, 25.0), tx_distortion_m=(25.0,),
        ablation_grid=(("leaky_relu", "mae", True, True), ("leaky_relu", "mse", True, True), ("softmax", "mae", False, True)), heatmap_sigmas_m=(8.0,),
    ),
    "cpu": Scale(
        "cpu", "hours on a 2-core CPU: 30 maps of an unseen seed, 30 BS candidates per map, thousands of queries per table",
        maps=30, seed=9191, protocol=ProtocolConfig(candidates_per_map=30), queries=3000, calibration_queries=2000,
        train_epochs=8, train_samples_per_epoch=8192,
    ),
    "paper": Scale(
        "paper", "the paper's sizes (99 maps, 80 candidates, 50 BS sets, 200 UEs; the published training recipe): for a GPU",
        maps=99, seed=9191, queries=0, calibration_queries=6000, train_preset="paper", train_epochs=50, train_samples_per_epoch=0,
        ablation_grid=tuple((a, loss, c, t) for a in ("leaky_relu", "relu", "softmax", "sigmoid") for loss in ("mae", "mse") for c in (True, False) for t in (True, False)),
    ),
}  # fmt: skip


def get_scale(name: str) -> Scale:
    if name not in SCALES:
        raise RadiolocError(f"--scale must be one of {', '.join(SCALES)}, got {name!r}")
    return SCALES[name]
