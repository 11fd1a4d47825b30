"""ToA ranging baselines of the paper's Table VIII, from the range each BS's dominant path gives the UE.

Every method sees only the BS positions ``s_i`` (row, col in metres) and the ranges ``d_i`` of a query
(:mod:`radioloc.datasets.ranging`: dominant-path length plus Gaussian noise ``sigma``), never a radio map. The
formulations follow the authors' descriptions collected in ``toa-baselines.md``; ``b`` (``bias_bound``) is the
bound on the NLOS bias the robust methods assume, a hyper-parameter, not a property of the data.

- ``pocs``: projection onto the discs ``|x - s_i| <= d_i`` (Gholami et al.), 10 N relaxation-free sweeps then
  20 N with a step shrinking like 1/cycle, from the map centre.
- ``sdp``: Vaghefi et al.'s SDP; the squared-range NLOS excess ``c_i >= 0`` is penalised by ``delta * sum c_i^2``.
  The authors' code leaves ``delta`` undefined, so it is ours: 1 with the weights normalised to mean 1.
- ``rsdp1``: Wang et al.'s worst case over the bias box ``0 <= b_i <= b`` (S-lemma), with the Cauchy-Schwarz and
  disc constraints of the relaxation.
- ``rsdp2``: Chen et al.'s model ``d = [I, 1] g + u`` with the balancing parameter ``g_{N+1}``, u in the ball that
  holds the box ``[-b/4, 7b/4]``.
- ``bisection``: Tomic et al.'s robust bisection: two squared-range rows per BS at ``d_i - b/2 +- b/2``, weighted,
  solved as a generalized trust-region subproblem (GTRS) by bisection on its multiplier.
- ``mcc``: Xiong et al.'s maximum correntropy criterion by half-quadratic iterations of weighted GTRS (SR-LS
  first), the kernel width by Silverman's rule.

The SDPs are solved with cvxpy and Clarabel, one compiled (DPP) problem per number of BSs re-solved with each
query's parameters. Coordinates enter the SDPs in units of 100 m: squared ranges of 10^5 m^2 would leave the
interior-point solver badly scaled, and the relaxations are invariant to a common scale.

A query whose problem is infeasible, whose solver fails or whose GTRS bracket holds no root is a *failure*: the
localizer answers it with the centroid of its BSs and counts it (``failed``), so a report can give the MAE over
every query and, as the paper's protocol does, over the successful ones only.

Every answer is then projected onto the UE box (``region``, registry option ``:region=``), the middle 164 x 164 m
where the protocol places every UE: the prior knowledge the Bayesian localizer and radioloc's kNN search with
(their default region ``ue-box``). The box is convex and holds the truth, so the projection, a clip, never moves
an answer away from it. Its buildings are not used: the methods see no map, and the outdoor pixels are no convex
set (the nearest one can be farther from the truth). ``outdoor`` and ``map`` leave the answers unconstrained, as
the paper's are.
"""

from __future__ import annotations

import warnings

import cvxpy as cp
import numpy as np

from radioloc.datasets.localization import LocalizationData
from radioloc.datasets.protocol import ProtocolConfig, check_region, middle_box
from radioloc.errors import RadiolocError
from radioloc.localizers.base import LocalizationEstimate, Localizer

METHODS = ("pocs", "sdp", "rsdp1", "rsdp2", "bisection", "mcc")
LABELS = {
    "pocs": "POCS",
    "sdp": "SDP",
    "rsdp1": "Robust SDP 1",
    "rsdp2": "Robust SDP 2",
    "bisection": "Bisection-based robust",
    "mcc": "Max. correntropy criterion",
}
USES_BIAS_BOUND = ("rsdp1", "rsdp2", "bisection")
SDP_METHODS = ("sdp", "rsdp1", "rsdp2")
MAP_CENTRE = np.array([128.0, 128.0])
SDP_SCALE_M = 100.0
MIN_SIGMA_M = 1e-4  # the authors' stand-in for sigma = 0 inside the SDP weights
SDP_DELTA = 1.0


# -- generalized trust-region subproblem, batched over queries --------------------------------------------------
_D = np.diag([1.0, 1.0, 0.0])
_G = np.array([0.0, 0.0, -0.5])


def solve_gtrs(rows: np.ndarray, targets: np.ndarray, weights: np.ndarray, upper: float) -> tuple[np.ndarray, np.ndarray]:
    """min ``|W (A y - f)|^2`` s.t. ``y1^2 + y2^2 = y3`` for each query: rows A (n, m, 3), targets f (n, m),
    weights (n, m). Returns (y (n, 3), ok (n,)). The multiplier is found by bisection of the decreasing
    ``phi(l) = y(l)' D y(l) + 2 g' y(l)`` on ``(-1 / lambda_max, upper]``; the upper end is doubled while phi is
    still positive there (at most 40 times); a query with no sign change is not ok."""
    n = rows.shape[0]
    # the minimizer ignores a common scale of a query's weights; MCC's Gaussian weights can all underflow
    # towards 1e-300 together, so they are brought to a maximum of 1
    top = weights.max(axis=1, keepdims=True) if weights.shape[1] else np.zeros((n, 1))
    w2 = (weights / np.where(top > 0, top, 1.0)) ** 2
    m = np.einsum("nmi,nm,nmj->nij", rows, w2, rows)
    b = np.einsum("nmi,nm,nm->ni", rows, w2, targets)
    ok = np.isfinite(m).all(axis=(1, 2)) & np.isfinite(b).all(axis=1) & (top[:, 0] > 0)
    m = np.where(ok[:, None, None], m, np.eye(3))
    b = np.where(ok[:, None], b, 0.0)
    vals, vecs = np.linalg.eigh(m)
    ok &= vals[:, 0] > 1e-13 * np.maximum(vals[:, -1], 1e-300)  # singular only: rows in metres and metres^2 are far apart
    inv_sqrt = np.einsum("nij,nj,nkj->nik", vecs, 1.0 / np.sqrt(np.maximum(vals, 1e-300)), vecs)
    lam_max = np.linalg.eigvalsh(inv_sqrt @ _D @ inv_sqrt)[:, -1]
    lower = -1.0 / np.maximum(lam_max, 1e-300)

    def phi(lam: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        system = m + lam[:, None, None] * _D
        with np.errstate(all="ignore"):
            try:
                y = np.linalg.solve(system, (b - lam[:, None] * _G)[..., None])[..., 0]
            except np.linalg.LinAlgError:
                y = np.stack([np.linalg.lstsq(s, r, rcond=None)[0] for s, r in zip(system, b - lam[:, None] * _G)])
            return y[:, 0] ** 2 + y[:, 1] ** 2 - y[:, 2], y

    lo = lower + 1e-9 * np.maximum(np.abs(lower), 1.0)
    hi = np.full(n, float(upper))
    phi_lo, _ = phi(lo)
    phi_hi, _ = phi(hi)
    for _ in range(40):
        grow = ok & (phi_hi > 0)
        if not grow.any():
            break
        hi = np.where(grow, hi * 2.0, hi)
        phi_hi, _ = phi(hi)
    ok &= (phi_lo > 0) & (phi_hi <= 0) & np.isfinite(phi_lo) & np.isfinite(phi_hi)
    for _ in range(80):  # |hi - lo| shrinks by 2^-80: beyond double precision for any bracket here
        mid = 0.5 * (lo + hi)
        value, _ = phi(mid)
        positive = value > 0
        lo = np.where(positive, mid, lo)
        hi = np.where(positive, hi, mid)
    value, y = phi(0.5 * (lo + hi))
    ok &= np.isfinite(y).all(axis=1)
    return y, ok


# -- the methods ------------------------------------------------------------------------------------------------
def pocs(bs: np.ndarray, ranges: np.ndarray, present: np.ndarray) -> np.ndarray:
    """(n, 2) POCS estimates: bs (n, k, 2), ranges (n, k), present (n, k) bool; always succeeds."""
    n, k = ranges.shape
    counts = present.sum(axis=1)
    x = np.tile(MAP_CENTRE, (n, 1))
    d = np.clip(np.nan_to_num(ranges), 0.0, None)
    # each query cycles through its own present BSs: column order of the present ones first
    order = np.argsort(~present, axis=1, kind="stable")
    for t in range(30 * k):
        step_in_own = t  # queries with fewer BSs cycle faster and finish their 30 N steps early
        active = step_in_own < 30 * counts
        n_own = np.maximum(counts, 1)
        column = order[np.arange(n), step_in_own % n_own]
        s = bs[np.arange(n), column]
        r = d[np.arange(n), column]
        offset = x - s
        distance = np.hypot(offset[:, 0], offset[:, 1])
        outside = distance > r
        projected = np.where(outside[:, None], s + offset * (r / np.maximum(distance, 1e-12))[:, None], x)
        first = step_in_own < 10 * n_own
        lam = 1.0 / np.maximum(np.ceil((step_in_own - 10 * n_own + 2) / n_own), 1.0)
        lam = np.where(first, 1.0, lam)
        x = np.where(active[:, None], x + lam[:, None] * (projected - x), x)
    return x


def bisection(bs: np.ndarray, ranges: np.ndarray, present: np.ndarray, bias_bound: float) -> tuple[np.ndarray, np.ndarray]:
    """Tomic et al.'s robust bisection: (positions (n, 2), ok (n,))."""
    d = np.where(present, ranges, 0.0)
    shifted = d - bias_bound / 2.0
    total = d.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.sqrt(np.clip(1.0 - d / total, 0.0, None)) / (2.0 * d)
    w = np.where(present & (d > 0) & np.isfinite(w), w, 0.0)
    s2 = (bs**2).sum(axis=2)
    row = np.concatenate([2.0 * bs, -np.ones(bs.shape[:2] + (1,))], axis=2)
    base = s2 - shifted**2 - bias_bound**2 / 4.0
    rows = np.concatenate([row, row], axis=1)
    targets = np.concatenate([base + shifted * bias_bound, base - shifted * bias_bound], axis=1)
    weights = np.concatenate([w, w], axis=1)
    y, ok = solve_gtrs(rows, np.where(weights > 0, targets, 0.0), weights, upper=100.0)
    return y[:, :2], ok


def mcc(bs: np.ndarray, ranges: np.ndarray, present: np.ndarray, iterations: int = 10, tolerance: float = 1e-5) -> tuple[np.ndarray, np.ndarray]:
    """Xiong et al.'s maximum correntropy criterion: (positions (n, 2), ok (n,)). The residual of BS i is
    ``e_i = d_i^2 - |x - s_i|^2``; with ``y = [x, |x|^2]`` it is ``f_i - A_i y``, ``A_i = [-2 s_i, 1]``,
    ``f_i = d_i^2 - |s_i|^2``."""
    n = len(ranges)
    d2 = np.where(present, ranges, 0.0) ** 2
    rows = np.concatenate([-2.0 * bs, np.ones(bs.shape[:2] + (1,))], axis=2)
    targets = np.where(present, d2 - (bs**2).sum(axis=2), 0.0)
    counts = present.sum(axis=1)

    def residuals(x: np.ndarray) -> np.ndarray:
        return np.where(present, d2 - ((x[:, None, :] - bs) ** 2).sum(axis=2), np.nan)

    x = np.tile(MAP_CENTRE, (n, 1))
    sigma = np.full(n, 1e7)  # the first step is plain SR-LS
    ok = np.ones(n, dtype=bool)
    running = np.ones(n, dtype=bool)
    for _ in range(iterations):
        weights = np.where(present, np.exp(-(np.nan_to_num(residuals(x)) ** 2) / (2.0 * sigma[:, None] ** 2)), 0.0)
        running &= (weights > 0).any(axis=1)
        if not running.any():
            break
        y, solved = solve_gtrs(rows[running], targets[running], np.sqrt(weights[running]), upper=1e5)
        new_x = x.copy()
        new_x[running] = np.where(solved[:, None], y[:, :2], x[running])
        ok[running] &= solved
        moved = np.hypot(*(new_x - x).T)
        x = new_x
        # Silverman's rule on the new residuals (MATLAB std: ddof=1; iqr: Hazen quantiles)
        residual = residuals(x)
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)
            std = np.nanstd(residual, axis=1, ddof=1)
            q75, q25 = np.nanpercentile(residual, [75, 25], axis=1, method="hazen")
        sigma = np.where(running, 1.06 * np.minimum(std, (q75 - q25) / 1.34) * np.maximum(counts, 1) ** -0.2, sigma)
        running &= (moved > tolerance) & np.isfinite(sigma) & (sigma > 0)
        if not running.any():
            break
    return x, ok


class SDPSolver:
    """One compiled cvxpy problem per (method, number of BSs), re-solved per query with its parameters."""

    def __init__(self, method: str, count: int, bias_bound: float, sigma: float):
        self.method, self.count = method, count
        n = count
        self.s = cp.Parameter((n, 2))
        self.d = cp.Parameter(n)
        self.d_sq = cp.Parameter(n)
        self.s_sq = cp.Parameter(n)
        self.x = cp.Variable(2)
        r = cp.Variable()
        position = cp.bmat([[np.eye(2), cp.reshape(self.x, (2, 1), order="C")], [cp.reshape(self.x, (1, 2), order="C"), cp.reshape(r, (1, 1), order="C")]])
        constraints = [position >> 0]
        rho = bias_bound / SDP_SCALE_M
        if method == "sdp":
            # min sum v_i (d_i^2 - h_i - c_i)^2 + delta sum c_i^2, h_i the relaxed |x - s_i|^2 = z - 2 s_i'x + |s_i|^2;
            # the weights enter premultiplied (DPP: a parameter may only multiply parameter-free terms)
            self.sqrt_v = cp.Parameter(n, nonneg=True)
            self.weighted_target = cp.Parameter(n)  # sqrt(v_i) (d_i^2 - |s_i|^2)
            self.weighted_s = cp.Parameter((n, 2))  # sqrt(v_i) 2 s_i
            self.margin = cp.Parameter(n)  # d_i^2 + u_i - |s_i|^2
            c = cp.Variable(n, nonneg=True)
            residual = self.weighted_target - cp.multiply(self.sqrt_v, r) + self.weighted_s @ self.x - cp.multiply(self.sqrt_v, c)
            objective = cp.sum_squares(residual) + SDP_DELTA * cp.sum_squares(c)
            constraints += [r - 2 * self.s @ self.x <= self.margin]  # |x - s_i|^2 <= d_i^2 + 4 sigma d_i (relaxed)
            self.problem = cp.Problem(cp.Minimize(objective), constraints)
            return
        size = n if method == "rsdp1" else n + 1
        G = cp.Variable((size, size), symmetric=True)
        g = cp.Variable(size)
        eta = cp.Variable()
        lam = cp.Variable(nonneg=True)
        lifted = cp.bmat([[G, cp.reshape(g, (size, 1), order="C")], [cp.reshape(g, (1, size), order="C"), np.ones((1, 1))]])
        constraints.append(lifted >> 0)
        self.s_dot = cp.Parameter((n, n))  # s_i' s_j
        for i in range(n):
            constraints.append(G[i, i] == r - 2 * self.s[i] @ self.x + self.s_sq[i])
            for j in range(i):
                pair = r - (self.s[i] + self.s[j]) @ self.x + self.s_dot[i, j]
                constraints += [G[i, j] >= pair, G[i, j] >= -pair]
        constraints.append(r - 2 * self.s @ self.x <= self.d_sq - self.s_sq)  # |x - s_i| <= d_i (relaxed)
        self.d_dot = cp.Parameter()  # d'd
        ones = np.ones((n, 1))
        if method == "rsdp1":
            top_right = cp.reshape(self.d - g, (n, 1), order="C") - (rho / 2.0) * lam * ones
            corner = eta - self.d_dot + 2 * self.d @ g - cp.trace(G)
            lmi = cp.bmat([[lam * np.eye(n) - np.eye(n), top_right], [top_right.T, cp.reshape(corner, (1, 1), order="C")]])
        else:
            # worst case of |B g + u - d|^2 over the ball holding u_i in [-rho/4, 7 rho/4]: S-lemma with
            # lambda [[I, a], [a', c]], a = (rho/4 - rho) 1, c = N rho^2 / 16 - 2 (rho / 4) N rho
            self.d_sum = cp.Parameter()
            a = (rho / 4.0 - rho) * ones
            c = n * rho**2 / 16.0 - 2.0 * (rho / 4.0) * n * rho
            bg_minus_d = cp.reshape(g[:n] + g[n] - self.d, (n, 1), order="C")
            trace_btb_g = cp.trace(G[:n, :n]) + 2 * cp.sum(G[:n, n]) + n * G[n, n]
            corner = trace_btb_g - 2 * (self.d @ g[:n] + self.d_sum * g[n]) + self.d_dot - eta
            top_right = lam * a - bg_minus_d
            lmi = cp.bmat([[lam * np.eye(n) - np.eye(n), top_right], [top_right.T, cp.reshape(lam * c - corner, (1, 1), order="C")]])
            constraints += [g[n] >= 0, g[n] <= rho / 4.0, G[n, n] >= 0, G[n, n] <= (rho / 4.0) ** 2]
        symmetric = cp.Variable((n + 1, n + 1), PSD=True)
        constraints += [symmetric == lmi]
        self.problem = cp.Problem(cp.Minimize(eta), constraints)
        self.sigma = sigma

    def solve(self, s: np.ndarray, d: np.ndarray, sigma: float) -> np.ndarray | None:
        """Position in metres, or None when infeasible or failed."""
        s = s / SDP_SCALE_M
        d = np.clip(d, 0.0, None) / SDP_SCALE_M
        s_sq = (s**2).sum(axis=1)
        self.s.value, self.d.value, self.d_sq.value, self.s_sq.value = s, d, d**2, s_sq
        if self.method == "sdp":
            sig = max(sigma, MIN_SIGMA_M) / SDP_SCALE_M
            v = 1.0 / np.maximum(sig * d, 1e-12) ** 2
            v = v / v.mean()
            sqrt_v = np.sqrt(v)
            self.sqrt_v.value = sqrt_v
            self.weighted_target.value = sqrt_v * (d**2 - s_sq)
            self.weighted_s.value = sqrt_v[:, None] * 2.0 * s
            self.margin.value = d**2 + 4.0 * sig * d - s_sq
        else:
            self.s_dot.value = s @ s.T
            self.d_dot.value = float(d @ d)
            if self.method == "rsdp2":
                self.d_sum.value = float(d.sum())
        try:
            with warnings.catch_warnings():  # "solution may be inaccurate": kept as the authors' code keeps it (non-NaN)
                warnings.simplefilter("ignore", UserWarning)
                self.problem.solve(solver=cp.CLARABEL)
        except cp.error.SolverError:
            return None
        if self.problem.status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE) or self.x.value is None or not np.isfinite(self.x.value).all():
            return None
        return self.x.value * SDP_SCALE_M


def in_region(positions: np.ndarray, region: str, size: int) -> np.ndarray:
    """(n, 2) answers on a ``size`` x ``size`` map projected onto the UE box for region ``ue-box``; as they are
    for ``outdoor`` and ``map`` (a map-free method knows no buildings: see the module docstring)."""
    if region != "ue-box":
        return positions
    lo, hi = middle_box(ProtocolConfig().ue_box, size)
    return np.clip(positions, lo, hi)


class ToALocalizer(Localizer):
    """One ToA method (:data:`METHODS`) behind the common interface; ``fit`` only calibrates the radii.

    ``locate`` also sets ``estimate.failed`` (n,) bool: the queries answered with the fallback (centroid of the
    query's BSs). The raw uncertainty spread is the RMS of the range residuals at the estimate (at least 1 m)."""

    uses_ranges = True

    calibration_per_count = 400  # the SDPs take milliseconds per query

    def __init__(self, method: str, bias_bound: float = 20.0, sigma_m: float = 0.0, region: str = "ue-box"):
        super().__init__()
        if method not in METHODS:
            raise RadiolocError(f"unknown ToA method {method!r} (known: {', '.join(METHODS)})")
        if not np.isfinite(bias_bound) or bias_bound < 0:
            raise RadiolocError(f"ToA bias bound b must be >= 0 m, got {bias_bound}")
        self.method, self.bias_bound, self.sigma_m = method, float(bias_bound), float(sigma_m)
        self.region = check_region(region, "ToA region")
        self.name = method + (f":b={bias_bound:g}" if method in USES_BIAS_BOUND else "")
        self._solvers: dict[int, SDPSolver] = {}
        self.last_failed = np.zeros(0, dtype=bool)

    def describe(self) -> dict:
        info = {"name": self.name, "method": LABELS[self.method], "sigma_m": self.sigma_m, "region": self.region}
        if self.method in USES_BIAS_BOUND:
            info["bias_bound_m"] = self.bias_bound
        if self.method == "sdp":
            info["delta"] = SDP_DELTA
        return info

    def _locate(self, data: LocalizationData, heatmaps: bool):
        q = data.queries
        if q.ranges_m is None:
            raise RadiolocError(
                f"{self.name}: the queries carry no ToA ranges (give --toa-sigma SIGMA to `radioloc evaluate`; in Python, radioloc.datasets.ranging.attach_ranges)"
            )
        present = (q.bs_ids >= 0) & np.isfinite(q.ranges_m)
        bs = data.scenes.bs_positions[q.map_slot[:, None], np.maximum(q.bs_ids, 0)].astype(np.float64)
        ranges = np.where(present, q.ranges_m, 0.0)
        n = len(q)
        if self.method == "pocs":
            positions, ok = pocs(bs, ranges, present), present.any(axis=1)
        elif self.method == "bisection":
            positions, ok = bisection(bs, ranges, present, self.bias_bound)
        elif self.method == "mcc":
            positions, ok = mcc(bs, ranges, present)
        else:
            positions, ok = np.full((n, 2), np.nan), np.zeros(n, dtype=bool)
            for i in range(n):
                use = present[i]
                count = int(use.sum())
                if count < 2:
                    continue
                if count not in self._solvers:
                    self._solvers[count] = SDPSolver(self.method, count, self.bias_bound, self.sigma_m)
                answer = self._solvers[count].solve(bs[i, use], ranges[i, use], self.sigma_m)
                if answer is not None:
                    positions[i], ok[i] = answer, True
        ok &= np.isfinite(positions).all(axis=1) & (present.sum(axis=1) >= 2 if self.method != "pocs" else True)
        weights = np.maximum(present.sum(axis=1, keepdims=True), 1)
        centroid = (bs * present[..., None]).sum(axis=1) / weights
        positions = in_region(np.where(ok[:, None], positions, centroid), self.region, data.scenes.buildings.shape[-1])
        residual = np.where(present, ranges - np.hypot(*(positions[:, None, :] - bs).transpose(2, 0, 1)), 0.0)
        spread = np.maximum(np.sqrt((residual**2).sum(axis=1) / weights[:, 0]), 1.0)
        self.last_failed = ~ok
        return positions, np.stack([spread, spread], axis=1), None

    def locate(self, data: LocalizationData, heatmaps: bool = False) -> LocalizationEstimate:
        estimate = super().locate(data, heatmaps)
        estimate.failed = self.last_failed.copy()
        return estimate


def make(name: str, options: tuple[str, ...]) -> ToALocalizer:
    """Registry factory: ``toa-METHOD[:b=B][:sigma=S][:region=R]`` (``b`` the bias bound of the robust methods,
    metres; ``sigma`` the range noise the SDP weights assume; ``region`` where answers are projected)."""
    method = name.removeprefix("toa-")
    values = {"b": 20.0, "sigma": 0.0}
    region = "ue-box"
    for option in options:
        key, _, value = option.partition("=")
        if key == "region":
            region = check_region(value, f"--model {name}:{option}: the region")
            continue
        try:
            values[key] = float(value)
        except ValueError:
            raise RadiolocError(f"--model {name}:{option}: expected {key}=NUMBER") from None
    return ToALocalizer(method, values["b"], values["sigma"], region)
