"""``DIR/report.md``: every finished experiment's tables beside the paper's numbers, the scale, the command, and a
finding-by-finding verdict. Written from the result files alone, so it can be rebuilt at any time."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import radioloc
from radioloc.errors import RadiolocError
from radioloc.evaluation.experiments import paper
from radioloc.evaluation.experiments.records import read_result
from radioloc.evaluation.experiments.runner import EXPERIMENTS
from radioloc.evaluation.experiments.scales import Scale
from radioloc.io import atomic_write_bytes


def _f(value, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _pct(value) -> str:
    return "-" if value is None else f"{100 * value:.0f} %"


def _verdict(holds: bool | None) -> str:
    return {True: "**holds**", False: "**does not hold**", None: "not checked"}[holds]


def _figures(result: dict, out: Path) -> list[str]:
    return [f"![{Path(f).stem}]({os.path.relpath(f, out)})" for f in result.get("figures", [])]


def _fig1(r: dict, out: Path) -> list[str]:
    p = paper.FIG1
    lines = [
        f"{r['links']:,} links (every candidate BS to every UE position of {r['maps']} maps), {r['links_without_path']} without any dominant path.",
        "",
        "| quantity | ours | paper |",
        "|---|---|---|",
        f"| share of LOS links | {_pct(r['line_of_sight_share'])} | {_pct(p['line_of_sight_share'])} |",
        f"| share of NLOS links with bias < 30 m | {_pct(r['nlos_bias_under_30m_share'])} | {_pct(p['nlos_bias_under_30m_share'])} |",
        f"| bias at CDF 0.5 (b) | {_f(r['bias_cdf_0.5_m'])} m | {p['bias_cdf_0.5_m']} m |",
        f"| bias at CDF 0.9 (b) | {_f(r['bias_cdf_0.9_m'])} m | {p['bias_cdf_0.9_m']} m |",
        f"| NLOS links only: bias at CDF 0.5 / 0.9 | {_f(r['nlos_bias_cdf_0.5_m'])} / {_f(r['nlos_bias_cdf_0.9_m'])} m | - |",
        "",
        *_figures(r, out),
    ]
    return lines


def _fig2(r: dict, out: Path) -> list[str]:
    lines = ["| scenario | UEs report | links | RMSE / MAE (dB), all links | above the floor | paper RMSE / MAE |", "|---|---|---|---|---|---|"]
    for scenario in ("nominal", "robust"):
        s = r[scenario]
        lines.append(
            f"| {scenario} | {s['measurement']} | {s['links']:,} | {_f(s['all_links']['rmse_db'])} / {_f(s['all_links']['mae_db'])} | "
            f"{_f(s['above_noise_floor']['rmse_db'])} / {_f(s['above_noise_floor']['mae_db'])} | {s['paper']['rmse_db']} / {s['paper']['mae_db']} |"
        )
    return [*lines, "", *_figures(r, out)]


def _table8(r: dict, out: Path) -> list[str]:
    lines = [
        f"{r['queries']:,} test queries, the same for every method; ranges = dominant-path length + N(0, sigma^2), every BS of the query (also below the"
        " pathloss noise floor, as the paper assumes). Each cell: **MAE over all queries** (failures answered with the centroid of the BSs) /"
        " MAE over the successful ones (the paper's protocol) / failure rate; paper's number in brackets.",
        "",
        "| method | b (m) | sigma 0: 5 BSs | 3 BSs | sigma 10: 5 BSs | 3 BSs | sigma 20: 5 BSs | 3 BSs | ms/query (paper) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    keys = list(dict.fromkeys((row["method"], row["b"]) for row in r["rows"]))
    for method, b in keys:
        cells = []
        ms = []
        published = paper.TABLE8.get((method, b))
        for sigma in (0.0, 10.0, 20.0):
            for i, count in enumerate((5, 3)):
                row = next(x for x in r["rows"] if x["method"] == method and x["b"] == b and x["sigma_m"] == sigma and x["bs"] == count)
                ms.append(row["ms_per_query"])
                fail = f" / {_pct(row['failure_rate'])}" if row["failures"] else ""
                theirs = f" ({published[int(sigma)][i]})" if published else ""
                cells.append(f"**{_f(row['mae_all_m'])}** / {_f(row['mae_successful_m'])}{fail}{theirs}")
        label = next(x["label"] for x in r["rows"] if x["method"] == method)
        lines.append(
            f"| {label} | {'-' if b is None else f'{b:g}'} | "
            + " | ".join(cells)
            + f" | {_f(sum(ms) / len(ms), 1)} ({published['ms'] if published else '-'}) |"
        )
    for model in dict.fromkeys(x["model"] for x in r["rss"]):
        rows = [x for x in r["rss"] if x["model"] == model]
        cells = []
        for sigma in (0.0, 10.0, 20.0):
            for i, count in enumerate((5, 3)):
                row = next((x for x in rows if sigma in x["pairs_with_sigma_m"] and x["bs"] == count), None)
                theirs = f" ({paper.TABLE8_LOCUNET[int(sigma)][i]})" if row and model.startswith("locunet") else ""
                cells.append(f"**{_f(row['mae_all_m'])}**{theirs}" if row else "")
        lines.append(f"| {model} (RSS, UEs report {rows[0]['measurement']}) | - | " + " | ".join(cells) + f" | {_f(rows[0]['ms_per_query'], 1)} |")
    lines += ["", *_figures(r, out)]
    return lines


def _fusion(r: dict, out: Path) -> list[str]:
    lines = [
        "The UE reports its pathloss and a ToA range (dominant-path length + N(0, sigma^2)) for every BS; `bayes:toa=SIGMA` multiplies the"
        " calibrated RSS likelihood by the Gaussian range likelihood on the BSs' dominant-path-length maps, radii recalibrated on validation queries"
        " with ranges. Same test queries and ranges as Table VIII.",
        "",
        "| ToA sigma | BSs | fused bayes (m) | cover 68 / 95 | locunet RSS only | best ToA method | ratio to the better |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in r["rows"]:
        f = row["fused"]
        lines.append(
            f"| {row['sigma_m']:g} m | {row['bs']} | **{_f(row['fused_mae_m'])}** | {_f(f['coverage_68'])} / {_f(f['coverage_95'])} | {_f(row['locunet_rss_mae_m'])} | "
            f"{row['best_toa']}: {_f(row['best_toa_mae_m'])} | {_f(row['ratio_to_better'])} |"
        )
    a = r["anchor_locswinnet"]
    lines += ["", f"Anchor: LocSwinNet (MLSP 2023) reports {a['rss_toa_m']} m with RSS + ToA against {a['rss_m']} m with RSS only, on true radio maps.",
              "", *_figures(r, out)]  # fmt: skip
    return lines


def _nc(value, converged: bool = True) -> str:
    return _f(value) if converged else "n.c."


def _table6(r: dict, out: Path) -> list[str]:
    published = dict(zip(paper.TABLE6["sigma_m"], zip(paper.TABLE6["locunet"], paper.TABLE6["knn"])))
    lines = ["Training positions + N(0, sigma^2) per coordinate; test positions clean. MAE (m), paper's in brackets.", "",
             "| sigma (m) | LocUNet | kNN (k) |", "|---|---|---|"]  # fmt: skip
    for row in r["rows"]:
        theirs = published.get(int(row["sigma_m"]), (None, None))
        lines.append(
            f"| {row['sigma_m']:g} | {_nc(row['locunet_mae_m'], row['locunet_converged'])} ({_f(theirs[0])}) | {_f(row['knn_mae_m'])} ({_f(theirs[1])}), k={row['knn_k']} |"
        )
    return lines


def _table7(r: dict, out: Path) -> list[str]:
    p = paper.TABLE7
    lines = ["Each BS's report read at the UE position + N(0, sigma^2) (redrawn inside buildings); the localizer knows the true position."
             " ZS: trained on clean reports. MAE (m), paper's in brackets.", "",
             "| sigma (m) | kNN ZS | LocUNet ZS | kNN trained on distorted | LocUNet trained on distorted |", "|---|---|---|---|---|"]  # fmt: skip
    for row in r["rows"]:
        i = p["sigma_m"].index(int(row["sigma_m"])) if int(row["sigma_m"]) in p["sigma_m"] else None

        def theirs(key, i=i):
            return f" ({p[key][i]})" if i is not None else ""

        lines.append(
            f"| {row['sigma_m']:g} | {_f(row['knn_zero_shot_mae_m'])}{theirs('knn_zero_shot')} | {_f(row['locunet_zero_shot_mae_m'])}{theirs('locunet_zero_shot')} | "
            f"{_f(row['knn_trained_mae_m'])}{theirs('knn_trained')} | {_f(row['locunet_trained_mae_m'])}{theirs('locunet_trained')} |"
        )
    return lines


def _table9(r: dict, out: Path) -> list[str]:
    lines = [f"MAE / RMSE (m) on the test queries; n.c. = no convergence (best validation MAE not below 0.9 x that of always answering the mean"
             f" training position). Paper, LeakyReLU + MAE, wC wT: {paper.TABLE9_LEAKY_MAE['mae_m']} / {paper.TABLE9_LEAKY_MAE['rmse_m']}.", "",
             "| loss | activation | inputs | MAE | RMSE |", "|---|---|---|---|---|"]  # fmt: skip
    for c in r["cells"]:
        lines.append(f"| {c['loss'].upper()} | {c['activation']} | {c['inputs']} | {_nc(c['mae_m'], c['converged'])} | {_nc(c['rmse_m'], c['converged'])} |")
    lines += ["", "Table X: gain in MAE of training with the MAE loss (over MSE), gain in RMSE of training with the MSE loss (over MAE).", "",
              "| activation | inputs | MAE gain | RMSE gain |", "|---|---|---|---|"]  # fmt: skip
    for i in r["table10"]:
        lines.append(f"| {i['activation']} | {i['inputs']} | {_pct1(i['mae_gain'])} | {_pct1(i['rmse_gain'])} |")
    return lines


def _pct1(value) -> str:
    return "n.c." if value is None else f"{100 * value:.1f} %"


def _fig4(r: dict, out: Path) -> list[str]:
    lines = [
        f"LocUNet (spatial regression, the same budget): {_f(r['locunet_mae_m'])} m.",
        "",
        "| target sigma (m) | CoM (mean) | argmax (mode) |",
        "|---|---|---|",
    ]
    for h in r["heatmap"]:
        lines.append(f"| {h['sigma_m']:g} | {_nc(h['com_mae_m'], h['converged'])} | {_nc(h['argmax_mae_m'], h['converged'])} |")
    for head, label in (("direct", "direct regression (fully connected head)"), ("classify", "direct classification (a class per cell)")):
        o = r["others"][head]
        lines.append(
            f"| {label} | {'converged' if o['converged'] else 'n.c.'}: MAE {_f(o['mae_m'])} (best val {_f(o['best_val_mae_m'])}, constant answer {_f(o['constant_answer_val_mae_m'])}) | |"
        )
    return [*lines, "", *_figures(r, out)]


def _fusion_locunet(r: dict, out: Path) -> list[str]:
    lines = [f"LocUNet with one ToA residual channel per BS ({r['init']}), nominal scenario, the fusion queries and ranges; network answer"
             " (no refinement). MAE (m).", "", "| ToA sigma | BSs | LocUNet + ToA | bayes + ToA | LocUNet RSS only | best ToA method |", "|---|---|---|---|---|---|"]  # fmt: skip
    for row in r["rows"]:
        lines.append(f"| {row['sigma_m']:g} m | {row['bs']} | {_nc(row['locunet_toa_mae_m'], row['converged'])} | {_f(row['bayes_toa_mae_m'])} | "
                     f"{_f(row['locunet_rss_mae_m'])} | {_f(row['best_toa_mae_m'])} |")  # fmt: skip
    return lines


SECTIONS = {
    "fig1-nlos-bias": _fig1, "fig2-estimate-error": _fig2, "table8-toa": _table8, "fusion-rss-toa": _fusion,
    "table6-label-noise": _table6, "table7-tx-uncertainty": _table7, "table9-ablations": _table9, "fig4-keypoint-baselines": _fig4,
    "fusion-locunet-toa": _fusion_locunet,
}  # fmt: skip


def _budget(results: dict[str, dict]) -> str:
    return ("at this scale every network trains from scratch with one seed and a short budget (see the scale), the paper's to convergence;"
            " differences of a few per cent between runs are within what another seed changes")  # fmt: skip


def findings(results: dict[str, dict]) -> list[tuple[str, bool | None, str, str]]:
    """(finding, holds, our numbers, why it does not hold or what qualifies it) for every paper finding the finished
    experiments check."""
    out = []
    if "table8-toa" in results:
        v = results["table8-toa"]["verdicts"]
        main, every = v["mae_successful_m"], v["mae_all_m"]
        for pairing, sigmas in (("nominal: locunet against sigma = 0", (0.0,)), ("robustness: locunet-robust against sigma = 10, 20", (10.0, 20.0))):
            cases = [c for c in main["locunet_beats_every_toa_method"]["cases"] if c["sigma_m"] in sigmas]
            all_cases = [c for c in every["locunet_beats_every_toa_method"]["cases"] if c["sigma_m"] in sigmas]
            holds = all(c["holds"] for c in cases)
            numbers = "; ".join(f"sigma {c['sigma_m']:g}, {c['bs']} BSs: {c['locunet_mae_m']:.2f} vs {c['best_toa']} {c['best_toa_mae_m']:.2f}" for c in cases)
            numbers += (
                f" (ToA: successful queries, the paper's protocol; over all queries it {'holds' if all(c['holds'] for c in all_cases) else 'does not hold'})"
            )
            why = ""
            if not holds and sigmas[0] > 0 and "fig2-estimate-error" in results:
                fig2 = results["fig2-estimate-error"]["robust"]
                why = (f"our robustness scenario is far harsher than the paper's: the DPM estimates are {fig2['all_links']['rmse_db']:.1f} dB RMSE from the"
                       f" ray-traced reports ({fig2['above_noise_floor']['rmse_db']:.1f} dB above the floor; paper 4.80 dB, Fig. 2), so the RSS localizers"
                       " lose far more than in the paper (locunet-robust vs the paper's 13.14 m) while the ToA methods, which use no radio map, match"
                       " the paper's numbers")  # fmt: skip
            out.append((f"LocUNet beats every ToA method in the paper's pairing (Table VIII), {pairing}", holds, numbers, why))
        s = main["every_sdp_beats_pocs"]
        out.append(("Every SDP-type method beats POCS (Table VIII)", s["holds"], f"{s['held']} of {s['cases']} (method, b, sigma, BS count) cases", ""))
    if "table6-label-noise" in results:
        f = results["table6-label-noise"]["finding"]
        out.append(("Label noise up to 25 m moves LocUNet's MAE by at most about 10 % (Table VI)", f["holds"], f"largest change {100 * f['max_relative_change']:.1f} %",
                    "" if f["holds"] else _budget(results)))  # fmt: skip
    if "table7-tx-uncertainty" in results:
        r = results["table7-tx-uncertainty"]
        cases = "; ".join(f"sigma {x['sigma_m']:g}: {x['locunet_trained_mae_m']:.2f} vs ZS {x['locunet_zero_shot_mae_m']:.2f}" for x in r["rows"])
        same = all(abs(x["knn_trained_mae_m"] - x["knn_zero_shot_mae_m"]) < 1e-9 for x in r["rows"])
        knn = ("identical for kNN: fitting chooses only k, and it chose the same k " + ", ".join(sorted({str(x["knn_k"]) for x in r["rows"]}))
               if same else ("kNN too" if r["finding"]["knn_holds"] else "kNN not always"))  # fmt: skip
        out.append(("Training on distorted Tx positions beats zero-shot (Table VII)", r["finding"]["holds"], f"LocUNet {cases}; {knn}",
                    "" if r["finding"]["holds"] else _budget(results)))  # fmt: skip
    if "table9-ablations" in results:
        r = results["table9-ablations"]
        f = r["finding_leaky_mae_best"]
        out.append(("LeakyReLU with MAE loss is best or within noise of best (Table IX)", f["holds"], f"best: {f['best']}; noise (2 standard errors) {_f(f['noise_m'])} m",
                    "" if f["holds"] else _budget(results)))  # fmt: skip
        g = r["finding_mae_gains_more"]
        out.append(("MAE training gains more in MAE than MSE training gains in RMSE (Table X)", g["holds"], f"mean gains {_pct1(g['mean_mae_gain'])} vs {_pct1(g['mean_rmse_gain'])}",
                    "" if g["holds"] else _budget(results)))  # fmt: skip
    if "fig4-keypoint-baselines" in results:
        r = results["fig4-keypoint-baselines"]
        best = min(min(h["com_mae_m"], h["argmax_mae_m"]) for h in r["heatmap"])
        out.append(("Heatmap regression trails LocUNet (Fig. 4)", r["finding"]["holds"], f"best heatmap regression {best:.2f} m vs LocUNet {r['locunet_mae_m']:.2f} m",
                    "" if r["finding"]["holds"] else _budget(results)))  # fmt: skip
    if "fusion-rss-toa" in results:
        g = results["fusion-rss-toa"]["goal"]
        out.append(
            (
                "Goal: RSS + ToA fusion <= 0.7 x the better of RSS-only locunet and the best ToA method (sigma 10 m, nominal, 5 BSs)",
                g["met"],
                f"ratio {g['ratio']:.2f}",
                "",
            )
        )
    return out


def _rendered(source: Path, render: Callable[[], list]) -> list:
    try:
        return render()
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, StopIteration) as exc:
        raise RadiolocError(f"{source}: corrupt experiment result ({type(exc).__name__}: {exc}); delete it to run its experiment again") from None


def write_report(out: Path, scale: Scale, command: str) -> Path:
    results = {}
    for name in EXPERIMENTS:
        path = out / "results" / f"{name}.json"
        if path.exists():
            results[name] = read_result(path, name, scale.name)
    lines = [
        "# The LocUNet paper's evaluation, reproduced with radioloc",
        "",
        f"- scale: **{scale.name}** ({scale.description}): {scale.maps} maps of seed {scale.seed}, {scale.protocol.candidates_per_map} BS candidates per map,"
        f" {scale.protocol.sets_per_map} BS sets x {scale.protocol.ues_per_map} UEs per map, {scale.queries or 'all'} test queries per table",
        f"- command: `{command}`",
        f"- radioloc {radioloc.__version__}, written {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        "- every number comes from the result files in `results/`; the shipped models (`locunet`, `locunet-robust`, `bayes`, `bayes-robust`) were"
        " fitted on other seeds than this dataset's",
        "",
        "## Findings",
        "",
        "| finding | verdict | our numbers | why it does not hold |",
        "|---|---|---|---|",
    ]
    # A result file is radioloc's own, but may be damaged or hand-edited: each section is rendered from its file
    # alone, so a field that is missing or of the wrong kind names that file (and how to recompute it).
    sections = {name: _rendered(out / "results" / f"{name}.json", lambda name=name, result=result: [f"`{name}`, {result['seconds']:.0f} s", "", *SECTIONS[name](result, out)])
                for name, result in results.items()}  # fmt: skip
    for finding, holds, numbers, why in _rendered(out / "results", lambda: list(findings(results))):
        lines.append(f"| {finding} | {_verdict(holds)} | {numbers} | {why} |")
    for name, exp in EXPERIMENTS.items():
        lines += ["", f"## {exp.title}", ""]
        lines += sections.get(name, [f"`{name}`: _not run at this scale yet_"])
    path = out / "report.md"
    atomic_write_bytes(path, ("\n".join(lines) + "\n").encode())
    return path
