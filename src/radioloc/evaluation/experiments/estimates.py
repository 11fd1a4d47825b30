"""Fig. 2: how far the radio maps a localizer sees are from what the UEs report, in both scenarios."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from radioloc.datasets.localization import LocalizationData
from radioloc.datasets.radiomaps import error_summary
from radioloc.evaluation.experiments import paper
from radioloc.evaluation.experiments.runner import NOMINAL, ROBUST, Context, experiment
from radioloc.evaluation.figures import save_figure
from radioloc.propagation.graylevel import DB_PER_GRAY, NOISE_FLOOR_DB, gray_to_db


def link_differences(data: LocalizationData) -> tuple[np.ndarray, np.ndarray]:
    """Estimate minus reported pathloss (dB) of every distinct (map, BS, UE) link of the queries, and whether the
    report is above the noise floor."""
    q = data.queries
    present = q.bs_ids >= 0
    slot = np.broadcast_to(q.map_slot[:, None], q.bs_ids.shape)[present]
    bs = q.bs_ids[present]
    rows = np.broadcast_to(np.round(q.position[:, :1]).astype(np.int64), q.bs_ids.shape)[present]
    cols = np.broadcast_to(np.round(q.position[:, 1:]).astype(np.int64), q.bs_ids.shape)[present]
    reported = q.pathloss_db[present].astype(np.float64)
    _, first = np.unique(np.stack([slot, bs, rows, cols], axis=1), axis=0, return_index=True)
    slot, bs, rows, cols, reported = slot[first], bs[first], rows[first], cols[first], reported[first]
    seen = gray_to_db(data.scenes.radio_maps[slot, bs, rows, cols]).astype(np.float64)
    return seen - reported, reported > NOISE_FLOOR_DB + 1e-3


@experiment("fig2-estimate-error", "Fig. 2: estimated (RadioUNet) minus reported pathloss at the UEs, nominal and robustness scenarios")
def fig2(ctx: Context) -> dict:
    result, figures = {}, []
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    for ax, (scenario, measurement) in zip(axes, (("nominal", NOMINAL), ("robust", ROBUST))):
        data = ctx.data("test", measurement, queries=0)
        diff, above = link_differences(data)
        summary = error_summary(diff, above)
        result[scenario] = {"measurement": measurement, "links": int(diff.size), "all_links": summary["outdoor"], "above_noise_floor": summary["above_noise_floor"],
                            "paper": paper.FIG2[scenario]}  # fmt: skip
        # one bin per gray level step: reports and maps are both quantized to it, finer bins alias
        steps = np.arange(np.floor(-20.0 / DB_PER_GRAY), np.ceil(20.0 / DB_PER_GRAY) + 2)
        edges = (steps - 0.5) * DB_PER_GRAY  # differences are whole multiples of the step: bins centred on them
        ax.hist(np.clip(diff, -20, 20), bins=edges, density=True, color="tab:blue" if scenario == "nominal" else "tab:orange")
        ax.set_yscale("log")
        ax.set_xlabel("estimate - reported pathloss (dB, clipped to +-20)")
        ax.set_title(
            f"{scenario}: RadioUNet (DPM) vs {measurement} truth at the UEs\nRMSE {summary['outdoor']['rmse_db']:.2f} dB, MAE {summary['outdoor']['mae_db']:.2f} dB "
            f"(paper {paper.FIG2[scenario]['rmse_db']} / {paper.FIG2[scenario]['mae_db']}), {diff.size:,} links",
            fontsize=9,
        )
    axes[0].set_ylabel("density")
    figures.append(str(save_figure(fig, ctx.figure("fig2_estimate_error.png"))))
    return {**result, "figures": figures}
