"""``DIR/report.md``: every finished experiment's tables beside the paper's numbers, the scale, the command, and a
finding-by-finding verdict. Written from the result files alone, so it can be rebuilt at any time."""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path

import radioloc
from radioloc.evaluation.experiments import paper
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
        lines.append(f"| {label} | {'-' if b is None else f'{b:g}'} | " + " | ".join(cells) + f" | {_f(sum(ms) / len(ms), 1)} ({published['ms'] if published else '-'}) |")
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


SECTIONS = {"fig1-nlos-bias": _fig1, "fig2-estimate-error": _fig2, "table8-toa": _table8, "fusion-rss-toa": _fusion}


def findings(results: dict[str, dict]) -> list[tuple[str, bool | None, str]]:
    """(finding, holds, our numbers) for every paper finding the finished experiments check."""
    out = []
    if "table8-toa" in results:
        v = results["table8-toa"]["verdicts"]
        main, every = v["mae_successful_m"], v["mae_all_m"]
        cases = "; ".join(
            f"sigma {c['sigma_m']:g}, {c['bs']} BSs: {c['locunet']} {c['locunet_mae_m']:.2f} vs {c['best_toa']} {c['best_toa_mae_m']:.2f}"
            for c in main["locunet_beats_every_toa_method"]["cases"]
        )
        out.append(("LocUNet beats every ToA method in the paper's pairing (Table VIII)", main["locunet_beats_every_toa_method"]["holds"],
                    f"{cases} (successful-query MAE of the ToA methods; over all queries it {'holds' if every['locunet_beats_every_toa_method']['holds'] else 'does not hold'})"))  # fmt: skip
        s = main["every_sdp_beats_pocs"]
        out.append(("Every SDP-type method beats POCS (Table VIII)", s["holds"], f"{s['held']} of {s['cases']} (method, b, sigma, BS count) cases"))
    if "fusion-rss-toa" in results:
        g = results["fusion-rss-toa"]["goal"]
        out.append(("Goal: RSS + ToA fusion <= 0.7 x the better of RSS-only locunet and the best ToA method (sigma 10 m, nominal, 5 BSs)", g["met"], f"ratio {g['ratio']:.2f}"))
    return out


def write_report(out: Path, scale: Scale, command: str) -> Path:
    results = {}
    for name in EXPERIMENTS:
        path = out / "results" / f"{name}.json"
        if path.exists():
            results[name] = json.loads(path.read_text())
    lines = [
        "# The LocUNet paper's evaluation, reproduced with radioloc",
        "",
        f"- scale: **{scale.name}** ({scale.description}): {scale.maps} maps of seed {scale.seed}, {scale.protocol.candidates_per_map} BS candidates per map,"
        f" {scale.protocol.sets_per_map} BS sets x {scale.protocol.ues_per_map} UEs per map, {scale.queries or 'all'} test queries per table",
        f"- command: `{command}`",
        f"- radioloc {radioloc.__version__}, written {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        "- every number comes from the result files in `results/`; the shipped models (`locunet`, `locunet-robust`, `bayes`, `bayes-robust`) were"
        " fitted on other seeds than this dataset's",
        "",
        "## Findings",
        "",
        "| finding | verdict | our numbers |",
        "|---|---|---|",
    ]
    for finding, holds, numbers in findings(results):
        lines.append(f"| {finding} | {_verdict(holds)} | {numbers} |")
    for name, exp in EXPERIMENTS.items():
        lines += ["", f"## {exp.title}", ""]
        if name not in results:
            lines += [f"`{name}`: _not run at this scale yet_"]
            continue
        lines += [f"`{name}`, {results[name]['seconds']:.0f} s", "", *SECTIONS[name](results[name], out)]
    path = out / "report.md"
    atomic_write_bytes(path, ("\n".join(lines) + "\n").encode())
    return path
