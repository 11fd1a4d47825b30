"""The paper's experiments that train networks, all in the robustness scenario (UEs report the ray-traced truth
with cars, the localizer sees RadioUNet's DPM estimates), as in the paper:

- Table VI: training positions off by Gaussian noise, tested on clean positions (LocUNet and kNN);
- Table VII: BS positions uncertain (each BS's report read at a displaced UE position), zero-shot and trained on
  such data (LocUNet and kNN);
- Tables IX and X: last activation, loss and the city / Tx input maps;
- Fig. 4: heatmap regression (Gaussian targets of several widths, inferred by centre of mass and by argmax),
  direct regression and direct classification, against LocUNet's spatial regression;
- beyond the paper, LocUNet with ToA channels (nominal scenario), beside the fused grid posterior.

Every network trains from scratch with the scale's budget (``Scale.train_*``), from the same seed, so the rows of
a table differ only in what the table varies. A training run lives in ``DIR/runs/{key}`` (resumable) and its test
metrics in ``DIR/cache/train/{key}.json``; runs with the same settings are shared between tables (the clean
LeakyReLU / MAE model is Table VI's sigma 0, Table VII's zero-shot model and Table IX's first cell).

A run *does not converge* ("n.c.") when its best validation MAE is not below 0.9 x the MAE of always answering
the mean training position: it learned next to nothing about where the UE is.
"""

from __future__ import annotations

import json
from dataclasses import asdict

import matplotlib.pyplot as plt
import numpy as np
import torch

from radioloc.baselines.knn import KNNLocalizer
from radioloc.datasets.localization import LocalizationData
from radioloc.datasets.perturb import distorted_reports, noisy_positions
from radioloc.evaluation.experiments import paper
from radioloc.evaluation.experiments.runner import NOMINAL, ROBUST, Context, experiment
from radioloc.evaluation.figures import save_figure
from radioloc.evaluation.localization import error_stats
from radioloc.io import atomic_write_json, json_safe
from radioloc.localizers.base import localization_errors
from radioloc.models.locunet import InputEncoder, load_locunet
from radioloc.models.runtime import Runtime
from radioloc.training.locunet import LocUNetTrainConfig, network_positions, train_locunet

CONVERGED_FRACTION = 0.9
KNN_CALIBRATION = 200  # radius calibration queries per BS count: the tables need positions, not radii


class Trainer:
    """Trains (or reuses) one network per distinct setting and measures it on the scale's test queries."""

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.runtime = Runtime.pick()

    def base_config(self, **overrides) -> LocUNetTrainConfig:
        s = self.ctx.scale
        settings = dict(
            measurement=ROBUST, epochs=s.train_epochs, samples_per_epoch=s.train_samples_per_epoch, val_queries=min(1000, s.calibration_queries), seed=0
        )
        return LocUNetTrainConfig.for_preset(s.train_preset, **{**settings, **overrides})

    def train(self, key: str, config: LocUNetTrainConfig, train: LocalizationData, val: LocalizationData, tests: dict[str, LocalizationData]) -> dict:
        """Metrics of the network ``config`` trained on ``train`` on each of ``tests``, cached under ``key``; a cached
        run asked about new test sets is measured on them too (retrained if its checkpoint is gone)."""
        path = self.ctx.out / "cache" / "train" / f"{key}.json"
        run = self.ctx.out / "runs" / key
        result = self.ctx.read_cached(path, "cached training result") if path.exists() else None
        if result is not None and set(tests) <= set(result["tests"]):
            return result
        if result is None or not (run / "best.pt").exists():
            self.ctx.console.print(f"training [bold]{key}[/bold] ({config.epochs} epochs x {config.samples_per_epoch or len(train.queries)} samples)")
            summary = train_locunet((train, val), run, config, self.runtime, quiet=False)
            baseline = localization_errors(np.broadcast_to(train.queries.position.mean(axis=0), val.queries.position.shape), val.queries.position).mean()
            result = {"config": asdict(config), "best_val_mae_m": summary["best_val_mae_m"], "constant_answer_val_mae_m": float(baseline),
                      "converged": bool(summary["best_val_mae_m"] < CONVERGED_FRACTION * baseline), "training_minutes": summary["training_minutes"],
                      "tests": {}}  # fmt: skip
        model = self.runtime.prepare(load_locunet(run / "best.pt").eval())
        for name, test in tests.items():
            if name not in result["tests"]:
                result["tests"][name] = self._measure(model, InputEncoder(model.config, test.scenes, self.runtime.device), test)
        atomic_write_json(path, result)
        return json.loads(json.dumps(json_safe(result)))

    def _measure(self, model, encoder: InputEncoder, test: LocalizationData) -> dict:
        positions = network_positions(model, encoder, test, self.runtime)
        out = {**error_stats(localization_errors(positions, test.queries.position))}
        if model.config.head == "heatmap":  # the mode of the same heatmaps
            modes = np.empty_like(positions)
            q = test.queries
            with torch.no_grad():
                for start in range(0, len(q), 64):
                    part = slice(start, min(start + 64, len(q)))
                    inputs = encoder.encode(q.map_slot[part], q.bs_ids[part], q.pathloss_db[part], None if q.ranges_m is None else q.ranges_m[part]).to(
                        self.runtime.dtype or torch.float32
                    )
                    with self.runtime.autocast():
                        modes[part] = model.argmax_position(model.heatmap(inputs.contiguous(memory_format=torch.channels_last)).float()).cpu().numpy()
            out["argmax"] = error_stats(localization_errors(modes, q.position))
        return out

    def knn(self, key: str, train: LocalizationData, tests: dict[str, LocalizationData]) -> dict:
        def compute():
            localizer = KNNLocalizer()
            localizer.calibration_per_count = KNN_CALIBRATION
            localizer.fit(train)
            return {"k": localizer.k, "tests": {name: error_stats(localization_errors(localizer.predict(t), t.queries.position)) for name, t in tests.items()}}

        path = self.ctx.out / "cache" / "train" / f"{key}.json"
        if path.exists():
            return self.ctx.read_cached(path, "cached result")
        value = json_safe(compute())
        atomic_write_json(path, value)
        return value


def _splits(ctx: Context) -> tuple[LocalizationData, LocalizationData, LocalizationData]:
    return ctx.data("train", ROBUST, queries=0), ctx.data("val", ROBUST, queries=ctx.scale.calibration_queries), ctx.data("test", ROBUST)


def _clean(ctx: Context, trainer: Trainer) -> dict:
    train, val, test = _splits(ctx)
    return trainer.train("locunet_leaky_relu_mae_cT_tT", trainer.base_config(), train, val, {"clean": test})


@experiment("table6-label-noise", "Table VI: LocUNet and kNN trained on noisy positions (sigma 0-25 m), tested on clean ones (robustness scenario)")
def table6(ctx: Context) -> dict:
    trainer = Trainer(ctx)
    train, val, test = _splits(ctx)
    rows = []
    for sigma in ctx.scale.label_noise_m:
        noisy_train, noisy_val = noisy_positions(train, sigma, seed=1), noisy_positions(val, sigma, seed=2)
        if sigma == 0:
            net = _clean(ctx, trainer)
        else:
            net = trainer.train(f"locunet_label_noise_{sigma:g}", trainer.base_config(), noisy_train, noisy_val, {"clean": test})
        knn = trainer.knn(f"knn_label_noise_{sigma:g}", noisy_train, {"clean": test})
        rows.append(
            {
                "sigma_m": sigma,
                "locunet_mae_m": net["tests"]["clean"]["mae"],
                "locunet_converged": net["converged"],
                "knn_mae_m": knn["tests"]["clean"]["mae"],
                "knn_k": knn["k"],
            }
        )
        ctx.console.print(f"label noise {sigma:g} m: LocUNet {rows[-1]['locunet_mae_m']:.2f} m, kNN {rows[-1]['knn_mae_m']:.2f} m (k={knn['k']})")
    base = rows[0]["locunet_mae_m"]
    worst = max(abs(r["locunet_mae_m"] - base) / base for r in rows)
    return {"rows": rows, "paper": paper.TABLE6, "finding": {"max_relative_change": worst, "holds": bool(worst <= 0.10)}}


@experiment("table7-tx-uncertainty", "Table VII: BS positions uncertain (sigma 5-25 m): zero-shot and trained on distorted reports (robustness scenario)")
def table7(ctx: Context) -> dict:
    trainer = Trainer(ctx)
    train, val, test = _splits(ctx)
    distorted_tests = {f"{s:g}": distorted_reports(test, ROBUST, s, seed=3) for s in ctx.scale.tx_distortion_m}
    # the shared clean model (Table VI's sigma 0), measured on the distorted tests too
    zero_shot = trainer.train("locunet_leaky_relu_mae_cT_tT", trainer.base_config(), train, val, {"clean": test, **distorted_tests})
    knn_zero_shot = trainer.knn("knn_label_noise_0_txdist", train, distorted_tests)
    rows = []
    for sigma in ctx.scale.tx_distortion_m:
        key = f"{sigma:g}"
        d_train, d_val = distorted_reports(train, ROBUST, sigma, seed=1), distorted_reports(val, ROBUST, sigma, seed=2)
        net = trainer.train(f"locunet_tx_distortion_{key}", trainer.base_config(), d_train, d_val, {key: distorted_tests[key]})
        knn = trainer.knn(f"knn_tx_distortion_{key}", d_train, {key: distorted_tests[key]})
        rows.append({
            "sigma_m": sigma, "locunet_zero_shot_mae_m": zero_shot["tests"][key]["mae"], "locunet_trained_mae_m": net["tests"][key]["mae"],
            "knn_zero_shot_mae_m": knn_zero_shot["tests"][key]["mae"], "knn_trained_mae_m": knn["tests"][key]["mae"], "knn_k": knn["k"],
        })  # fmt: skip
        r = rows[-1]
        ctx.console.print(
            f"Tx sigma {sigma:g} m: LocUNet ZS {r['locunet_zero_shot_mae_m']:.2f} / trained {r['locunet_trained_mae_m']:.2f}; kNN ZS {r['knn_zero_shot_mae_m']:.2f} / trained {r['knn_trained_mae_m']:.2f}"
        )
    holds = all(r["locunet_trained_mae_m"] < r["locunet_zero_shot_mae_m"] for r in rows)
    return {
        "rows": rows,
        "paper": paper.TABLE7,
        "finding": {"holds": bool(holds), "knn_holds": bool(all(r["knn_trained_mae_m"] < r["knn_zero_shot_mae_m"] for r in rows))},
    }


@experiment("fig4-keypoint-baselines", "Fig. 4: heatmap regression (CoM and argmax), direct regression and classification vs LocUNet (robustness scenario)")
def fig4(ctx: Context) -> dict:
    trainer = Trainer(ctx)
    train, val, test = _splits(ctx)
    locunet = _clean(ctx, trainer)["tests"]["clean"]
    heatmaps = []
    for sigma in ctx.scale.heatmap_sigmas_m:
        run = trainer.train(f"heatmap_{sigma:g}", trainer.base_config(head="heatmap", heatmap_sigma_m=sigma), train, val, {"clean": test})
        t = run["tests"]["clean"]
        heatmaps.append({"sigma_m": sigma, "converged": run["converged"], "com_mae_m": t["mae"], "argmax_mae_m": t["argmax"]["mae"]})
        ctx.console.print(f"heatmap regression sigma {sigma:g} m: CoM {t['mae']:.2f} m, argmax {t['argmax']['mae']:.2f} m (LocUNet {locunet['mae']:.2f} m)")
    others = {}
    for head in ("direct", "classify"):
        run = trainer.train(f"{head}_regression" if head == "direct" else "classification", trainer.base_config(head=head), train, val, {"clean": test})
        others[head] = {"converged": run["converged"], "mae_m": run["tests"]["clean"]["mae"], "best_val_mae_m": run["best_val_mae_m"],
                        "constant_answer_val_mae_m": run["constant_answer_val_mae_m"]}  # fmt: skip
        ctx.console.print(f"{head}: {'converged' if run['converged'] else 'n.c.'}, MAE {others[head]['mae_m']:.2f} m")
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    sigmas = [h["sigma_m"] for h in heatmaps]
    ax.plot(sigmas, [h["com_mae_m"] for h in heatmaps], "o-", label="heatmap regression, CoM (mean)")
    ax.plot(sigmas, [h["argmax_mae_m"] for h in heatmaps], "s-", label="heatmap regression, argmax (mode)")
    ax.axhline(locunet["mae"], color="tab:green", label=f"LocUNet spatial regression ({locunet['mae']:.1f} m)")
    ax.set_xlabel("standard deviation of the Gaussian target heatmap (m)")
    ax.set_ylabel("MAE (m)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("Fig. 4: heatmap vs spatial regression, robustness scenario", fontsize=10)
    figure = save_figure(fig, ctx.figure("fig4_heatmap_regression.png"))
    trails = all(min(h["com_mae_m"], h["argmax_mae_m"]) > locunet["mae"] for h in heatmaps)
    return {"locunet_mae_m": locunet["mae"], "heatmap": heatmaps, "others": others, "finding": {"holds": bool(trails)}, "figures": [str(figure)]}


@experiment(
    "fusion-locunet-toa", "Beyond the paper: LocUNet with ToA channels (RSS + ToA), against bayes:toa, on the fusion queries", needs=("fusion-rss-toa",)
)
def fusion_locunet(ctx: Context) -> dict:
    """The shipped nominal LocUNet grown by one zero-initialized ToA residual channel per BS and fine-tuned on this
    dataset's training maps with ranges of the same noise (the paper preset trains from scratch)."""
    trainer = Trainer(ctx)
    fused_bayes = {(r["sigma_m"], r["bs"]): r for r in ctx.result("fusion-rss-toa")["rows"]}
    rows = []
    for sigma in (10.0, 20.0):
        train = ctx.data("train", NOMINAL, queries=0, toa_sigma=sigma)
        val = ctx.data("val", NOMINAL, queries=ctx.scale.calibration_queries, toa_sigma=sigma)
        test = ctx.data("test", NOMINAL, toa_sigma=sigma)
        tests = {f"{count}bs": test.first_bs(count) for count in (5, 3)}
        init = {"init": "locunet", "lr": 3e-4} if ctx.scale.train_preset == "cpu" else {}
        config = trainer.base_config(measurement=NOMINAL, toa_channels=True, **init)
        run = trainer.train(f"locunet_toa_{sigma:g}", config, train, val, tests)
        for count in (5, 3):
            bayes = fused_bayes[(sigma, count)]
            rows.append({"sigma_m": sigma, "bs": count, "converged": run["converged"], "locunet_toa_mae_m": run["tests"][f"{count}bs"]["mae"],
                         "bayes_toa_mae_m": bayes["fused_mae_m"], "locunet_rss_mae_m": bayes["locunet_rss_mae_m"], "best_toa_mae_m": bayes["best_toa_mae_m"]})  # fmt: skip
            r = rows[-1]
            ctx.console.print(
                f"sigma {sigma:g} m, {count} BSs: LocUNet+ToA {r['locunet_toa_mae_m']:.2f} m, bayes+ToA {r['bayes_toa_mae_m']:.2f}, LocUNet RSS {r['locunet_rss_mae_m']:.2f}"
            )
    return {"rows": rows, "init": "shipped locunet" if ctx.scale.train_preset == "cpu" else "from scratch"}


INPUTS = {(True, True): "wC wT", (False, True): "w/oC wT", (True, False): "wC w/oT", (False, False): "w/oC w/oT"}


@experiment("table9-ablations", "Tables IX and X: last activation, loss, city and Tx maps (robustness scenario)")
def table9(ctx: Context) -> dict:
    trainer = Trainer(ctx)
    train, val, test = _splits(ctx)
    cells = []
    for activation, loss, city, tx in ctx.scale.ablation_grid:
        key = f"locunet_{activation}_{loss}_c{'T' if city else 'F'}_t{'T' if tx else 'F'}"
        config = trainer.base_config(activation=activation, loss=loss, city_map=city, tx_maps=tx)
        run = trainer.train(key, config, train, val, {"clean": test})
        t = run["tests"]["clean"]
        cells.append({"activation": activation, "loss": loss, "inputs": INPUTS[(city, tx)], "converged": run["converged"], "mae_m": t["mae"], "rmse_m": t["rmse"],
                      "n": t["n"], "best_val_mae_m": run["best_val_mae_m"]})  # fmt: skip
        ctx.console.print(
            f"{activation:10s} {loss} {INPUTS[(city, tx)]:9s}: " + (f"MAE {t['mae']:.2f} m, RMSE {t['rmse']:.2f} m" if run["converged"] else "n.c.")
        )
    improvements = table10(cells)
    leaky = next((c for c in cells if c["activation"] == "leaky_relu" and c["loss"] == "mae" and c["inputs"] == "wC wT"), None)
    done = [c for c in cells if c["converged"] and c["inputs"] == "wC wT"]
    best = min(done, key=lambda c: c["mae_m"]) if done else None
    # within noise: less than two standard errors of the best cell's MAE above it (errors are heavy-tailed: std ~ RMSE)
    noise = 2.0 * best["rmse_m"] / np.sqrt(best["n"]) if best else None
    leaky_holds = bool(leaky and leaky["converged"] and best and leaky["mae_m"] <= best["mae_m"] + noise)
    gains = [(i["mae_gain"], i["rmse_gain"]) for i in improvements if i["mae_gain"] is not None and i["rmse_gain"] is not None]
    return {
        "cells": cells, "table10": improvements, "paper_table9_leaky_mae_wcwt": paper.TABLE9_LEAKY_MAE,
        "finding_leaky_mae_best": {"holds": leaky_holds, "best": best and f"{best['activation']}/{best['loss']}", "noise_m": noise},
        "finding_mae_gains_more": {"holds": bool(gains) and bool(np.mean([g[0] for g in gains]) > np.mean([g[1] for g in gains])),
                                   "mean_mae_gain": float(np.mean([g[0] for g in gains])) if gains else None,
                                   "mean_rmse_gain": float(np.mean([g[1] for g in gains])) if gains else None},
    }  # fmt: skip


def table10(cells: list[dict]) -> list[dict]:
    """Table X: per activation and inputs with both losses converged, the MAE gain of MAE training over MSE training
    and the RMSE gain of MSE training over MAE training (fractions)."""
    out = []
    for activation in dict.fromkeys(c["activation"] for c in cells):
        for inputs in dict.fromkeys(c["inputs"] for c in cells):
            mae = next((c for c in cells if (c["activation"], c["inputs"], c["loss"]) == (activation, inputs, "mae")), None)
            mse = next((c for c in cells if (c["activation"], c["inputs"], c["loss"]) == (activation, inputs, "mse")), None)
            if mae is None or mse is None:
                continue
            both = mae["converged"] and mse["converged"]
            out.append({"activation": activation, "inputs": inputs,
                        "mae_gain": (mse["mae_m"] - mae["mae_m"]) / mse["mae_m"] if both else None,
                        "rmse_gain": (mae["rmse_m"] - mse["rmse_m"]) / mae["rmse_m"] if both else None})  # fmt: skip
    return out
