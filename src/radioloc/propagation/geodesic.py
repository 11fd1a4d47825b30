"""Shortest obstacle-free paths on a raster city map, bending only at convex building corners.

Geometry (see :mod:`radioloc.city.grid`): pixel ``[i, j]`` is the square centred on ``(i, j)`` with side 1.
Obstacle pixels (buildings, cars) are solid squares. Transmitters and receivers sit at pixel centres;
the only possible bend points of a shortest path are *convex corners*: lattice points ``(a - 0.5, b - 0.5)``
with exactly one obstacle pixel among the four around them.

A segment is *clear* when it does not enter the interior of the obstacle region. Grazing is allowed: a
segment may touch a corner or run along the edge of one obstacle pixel. It is blocked where it runs along the
edge between two obstacle pixels, or squeezes through the point where two obstacle pixels touch diagonally.
All tests are done in exact integer arithmetic on doubled coordinates (pixel centres even, corners odd), so
results do not depend on floating-point rounding and are exactly equivariant under rotations and transposes.

The map edge acts as a wall: no path runs outside the map.

The search is a Dijkstra over pixel centres and convex corners in which every node inherits its candidate
"last bend" (the transmitter or a corner) from the nodes around it, verified by an exact line-of-sight test.
A shortest path reaching a pixel passes through the pixels before it along its last segment, so these
candidates contain the true last bend; the one exception, the thin shadow that starts far behind a corner
when the incoming ray grazes a wall, is covered by handing each corner to the pixels along its shadow
boundary. The tests check the result against a brute-force visibility graph: lengths agree exactly except
on rare ties between two routes within millimetres of each other.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

# The Dijkstra below compares path lengths with this tolerance (metres) so that mirror-image paths of equal
# length are treated as ties, broken by the smaller diffraction loss.
_TIE_M = 1e-9


@nb.njit(cache=True, inline="always")
def _is_obstacle(padded, i, j):
    # ``padded`` has a one-pixel wall around the map: no path may run outside the map.
    return padded[i + 1, j + 1] != 0


def pad_with_wall(obstacle: np.ndarray) -> np.ndarray:
    """The obstacle map with a one-pixel wall around it, as :func:`segment_clear` expects."""
    padded = np.ones((obstacle.shape[0] + 2, obstacle.shape[1] + 2), dtype=np.uint8)
    padded[1:-1, 1:-1] = obstacle != 0
    return padded


@nb.njit(cache=True, inline="always")
def _cell(padded, u, v, swap):
    return _is_obstacle(padded, v, u) if swap else _is_obstacle(padded, u, v)


@nb.njit(cache=True)
def _clear_along_grid_line(padded, line, start, end, swap):
    """A segment on the grid line ``line`` (odd doubled coordinate of one axis) from ``start`` to ``end``
    (odd doubled coordinates of the other axis; ``swap`` exchanges the axes). Blocked where obstacles lie on
    both sides of the line, or touch diagonally across it."""
    lo = (line - 1) // 2
    hi = (line + 1) // 2
    step = 1 if end > start else -1
    k = (start + 1) // 2 if step > 0 else (start - 1) // 2
    k_end = (end - 1) // 2 if step > 0 else (end + 1) // 2
    prev_lo = False
    prev_hi = False
    first = True
    while True:
        a = _cell(padded, lo, k, swap)
        b = _cell(padded, hi, k, swap)
        if a and b:
            return False
        if not first and ((prev_lo and b) or (prev_hi and a)):
            return False
        prev_lo = a
        prev_hi = b
        first = False
        if k == k_end:
            return True
        k += step


@nb.njit(cache=True, error_model="numpy")
def segment_clear(obstacle, p0, p1, q0, q1):
    """Whether the segment from P to Q (doubled integer coordinates) avoids the obstacle interior.

    ``obstacle`` is the map padded by :func:`pad_with_wall`."""
    d0 = q0 - p0
    d1 = q1 - p1
    if d0 == 0 and d1 == 0:
        return True
    # A segment lying on a grid line (only possible between two corners).
    if d0 == 0 and (p0 & 1) == 1:
        return _clear_along_grid_line(obstacle, p0, p1, q1, False)
    if d1 == 0 and (p1 & 1) == 1:
        return _clear_along_grid_line(obstacle, p1, p0, q0, True)

    s0 = 1 if d0 > 0 else (-1 if d0 < 0 else 0)
    s1 = 1 if d1 > 0 else (-1 if d1 < 0 else 0)
    # Start cell: the pixel the segment enters when it leaves P.
    if (p0 & 1) == 0:
        i = p0 // 2
    else:
        i = (p0 + 1) // 2 if s0 > 0 else (p0 - 1) // 2
    if (p1 & 1) == 0:
        j = p1 // 2
    else:
        j = (p1 + 1) // 2 if s1 > 0 else (p1 - 1) // 2
    a0 = abs(d0)
    a1 = abs(d1)
    n0 = 0
    n1 = 0
    while True:
        if _is_obstacle(obstacle, i, j):
            return False
        # Parameter of the next crossing along each axis, as numerators over a0 (resp. a1).
        if s0 != 0:
            n0 = (2 * i + s0 - p0) * s0  # distance to the next row boundary, times the sign
        if s1 != 0:
            n1 = (2 * j + s1 - p1) * s1
        # t0 = n0 / a0, t1 = n1 / a1; stop when the next crossing is at or beyond Q (t >= 1).
        if s0 == 0:
            if n1 >= a1:
                return True
            j += s1
            continue
        if s1 == 0:
            if n0 >= a0:
                return True
            i += s0
            continue
        lhs = n0 * a1
        rhs = n1 * a0
        if lhs < rhs:
            if n0 >= a0:
                return True
            i += s0
        elif rhs < lhs:
            if n1 >= a1:
                return True
            j += s1
        else:
            if n0 >= a0:
                return True
            # Through a lattice point: blocked if both side pixels are obstacles (a diagonal pinch).
            if _is_obstacle(obstacle, i + s0, j) and _is_obstacle(obstacle, i, j + s1):
                return False
            i += s0
            j += s1


@nb.njit(cache=True, nogil=True)
def convex_corners(obstacle):
    """Boolean (H+1, W+1) mask of lattice points with exactly one obstacle pixel among the four around them
    (``obstacle`` padded by :func:`pad_with_wall`)."""
    h = obstacle.shape[0] - 2
    w = obstacle.shape[1] - 2
    out = np.zeros((h + 1, w + 1), dtype=np.bool_)
    for a in range(h + 1):
        for b in range(w + 1):
            count = 0
            if _is_obstacle(obstacle, a - 1, b - 1):
                count += 1
            if _is_obstacle(obstacle, a - 1, b):
                count += 1
            if _is_obstacle(obstacle, a, b - 1):
                count += 1
            if _is_obstacle(obstacle, a, b):
                count += 1
            out[a, b] = count == 1
    return out


@nb.njit(cache=True, inline="always")
def _node_xy(node, n_pix, w):
    """Doubled integer coordinates of a node (pixel centre or lattice point)."""
    if node < n_pix:
        return 2 * (node // w), 2 * (node % w)
    k = node - n_pix
    return 2 * (k // (w + 1)) - 1, 2 * (k % (w + 1)) - 1


@nb.njit(cache=True)
def heap_push(keys, vals, size, key, val):
    if size >= keys.shape[0]:
        new_keys = np.empty(keys.shape[0] * 2, dtype=keys.dtype)
        new_vals = np.empty(vals.shape[0] * 2, dtype=vals.dtype)
        new_keys[:size] = keys[:size]
        new_vals[:size] = vals[:size]
        keys = new_keys
        vals = new_vals
    pos = size
    while pos > 0:
        up = (pos - 1) >> 1
        if keys[up] <= key:
            break
        keys[pos] = keys[up]
        vals[pos] = vals[up]
        pos = up
    keys[pos] = key
    vals[pos] = val
    return keys, vals, size + 1


@nb.njit(cache=True)
def heap_pop(keys, vals, size):
    top_key = keys[0]
    top_val = vals[0]
    size -= 1
    key = keys[size]
    val = vals[size]
    pos = 0
    while True:
        child = 2 * pos + 1
        if child >= size:
            break
        if child + 1 < size and keys[child + 1] < keys[child]:
            child += 1
        if keys[child] >= key:
            break
        keys[pos] = keys[child]
        vals[pos] = vals[child]
        pos = child
    if size > 0:
        keys[pos] = key
        vals[pos] = val
    return top_key, top_val, size


@nb.njit(cache=True)
def _trace_shadow_ray(obstacle, cx, cy, dir_x, dir_y, out, dist, done, base_len):
    """Pixels along the ray from corner C (doubled coordinates) in direction ``dir``, until it enters an
    obstacle, leaves the map, or reaches pixels already settled with a path shorter by 0.5 m than one via C
    (beyond them C cannot be the better last bend). Writes their indices to ``out`` and returns how many."""
    h, w = obstacle.shape
    norm = math.sqrt(dir_x * dir_x + dir_y * dir_y)
    if norm == 0.0:
        return 0
    ux = dir_x / norm
    uy = dir_y / norm
    x0 = 0.5 * cx
    y0 = 0.5 * cy
    count = 0
    last_i = -10
    last_j = -10
    t = 0.5
    while count < out.shape[0]:
        x = x0 + t * ux
        y = y0 + t * uy
        if x < -0.5 or y < -0.5 or x > h - 0.5 or y > w - 0.5:
            break
        i = int(math.floor(x + 0.5))
        j = int(math.floor(y + 0.5))
        # Stop inside an obstacle, but not on its boundary (a ray may graze along a wall).
        fx = x + 0.5 - i
        fy = y + 0.5 - j
        on_edge = fx < 1e-9 or fx > 1 - 1e-9 or fy < 1e-9 or fy > 1 - 1e-9
        if i < h and j < w and obstacle[i, j] != 0 and not on_edge:
            break
        if i != last_i or j != last_j:
            pix = min(i, h - 1) * w + min(j, w - 1)
            if t > 2.0 and done[pix] and dist[pix] + 0.5 < base_len + t:
                break
            out[count, 0] = min(i, h - 1)
            out[count, 1] = min(j, w - 1)
            count += 1
            last_i = i
            last_j = j
        t += 0.5
    return count


@nb.njit(cache=True, error_model="numpy", nogil=True)
def dominant_paths(padded, corners, tx_row, tx_col, diffraction_per_rad):
    """Shortest paths from a transmitter at pixel ``(tx_row, tx_col)`` to every open pixel.

    ``padded`` is the obstacle map padded by :func:`pad_with_wall`; ``corners`` is its :func:`convex_corners`
    (both computed once per map and shared by its transmitters). Among paths of equal length the one with the smaller diffraction loss is kept, the loss
    being ``diffraction_per_rad`` times the sum of the deflection angles at the corners.

    Returns ``(length, deflection_loss, bends)`` per pixel: length in metres (``inf`` where unreachable or
    inside an obstacle), the summed diffraction loss, and the number of corners on the path (0 = line of
    sight).
    """
    obstacle = padded[1:-1, 1:-1]
    h, w = obstacle.shape
    n_pix = h * w
    n_nodes = n_pix + (h + 1) * (w + 1)
    dist = np.full(n_nodes, np.inf)
    loss = np.full(n_nodes, np.inf)
    parent = np.full(n_nodes, -1, dtype=np.int64)
    bends = np.zeros(n_nodes, dtype=np.int32)
    done = np.zeros(n_nodes, dtype=np.bool_)
    # Line-of-sight results already computed for (node, candidate): two slots per node.
    cache_cand = np.full((n_nodes, 2), -1, dtype=np.int64)
    cache_ok = np.zeros((n_nodes, 2), dtype=np.bool_)
    cache_next = np.zeros(n_nodes, dtype=np.int8)

    ray_cells = np.empty((4 * (h + w) + 8, 2), dtype=np.int64)

    tx = tx_row * w + tx_col
    dist[tx] = 0.0
    loss[tx] = 0.0
    parent[tx] = tx
    keys = np.empty(4096, dtype=np.float64)
    vals = np.empty(4096, dtype=np.int64)
    size = 0
    keys, vals, size = heap_push(keys, vals, size, 0.0, tx)

    while size > 0:
        key, node, size = heap_pop(keys, vals, size)
        if done[node] or key > dist[node] + _TIE_M:
            continue
        done[node] = True
        nx, ny = _node_xy(node, n_pix, w)
        is_corner = node >= n_pix
        # Candidate last bends this node hands on: its own last bend, and itself if it is a corner.
        n_cand = 2 if is_corner else 1
        for ci in range(n_cand):
            cand = parent[node] if ci == 0 else node
            cx, cy = _node_xy(cand, n_pix, w)
            if cand == tx:
                base_len = 0.0
                base_loss = 0.0
                in_x = 0.0
                in_y = 0.0
                base_bends = 0
            else:
                base_len = dist[cand]
                base_loss = loss[cand]
                px, py = _node_xy(parent[cand], n_pix, w)
                in_x = float(cx - px)
                in_y = float(cy - py)
                base_bends = bends[cand] + 1
            # Neighbourhood, symmetric about the node: pixels within 1 (within 1.5 of a corner) and
            # corners within 1.5 (within 2 of a corner).
            if is_corner:
                pi0 = (nx + 1) // 2 - 2
                pj0 = (ny + 1) // 2 - 2
                p_span = 4
                la0 = (nx + 1) // 2 - 2
                lb0 = (ny + 1) // 2 - 2
                l_span = 5
            else:
                pi0 = nx // 2 - 1
                pj0 = ny // 2 - 1
                p_span = 3
                la0 = nx // 2 - 1
                lb0 = ny // 2 - 1
                l_span = 4
            # A corner also hands itself to the pixels along its shadow boundary (the ray continuing the
            # incoming segment): the shadow behind a corner can start far from it when the incoming ray
            # grazes a wall, and those pixels have no neighbour that already knows the corner.
            n_ray = 0
            if is_corner and ci == 1:
                n_ray = _trace_shadow_ray(obstacle, cx, cy, in_x, in_y, ray_cells, dist, done, base_len)
            n_local = p_span * p_span + l_span * l_span
            # Around each ray pixel: its 3 x 3 pixels and the 4 corners of the pixel itself.
            for k in range(n_local + 13 * n_ray):
                # (u, v) is a pixel (row, col) or a lattice point (a, b), depending on is_pixel.
                if k >= n_local:
                    kr = (k - n_local) // 13
                    kn = (k - n_local) % 13
                    is_pixel = kn < 9
                    if is_pixel:
                        u = ray_cells[kr, 0] + kn // 3 - 1
                        v = ray_cells[kr, 1] + kn % 3 - 1
                    else:
                        u = ray_cells[kr, 0] + (kn - 9) // 2
                        v = ray_cells[kr, 1] + (kn - 9) % 2
                else:
                    is_pixel = k < p_span * p_span
                    if is_pixel:
                        u = pi0 + k // p_span
                        v = pj0 + k % p_span
                    else:
                        kk = k - p_span * p_span
                        u = la0 + kk // l_span
                        v = lb0 + kk % l_span
                if is_pixel:
                    if u < 0 or v < 0 or u >= h or v >= w or obstacle[u, v] != 0:
                        continue
                    target = u * w + v
                    tx2 = 2 * u
                    ty2 = 2 * v
                else:
                    if u < 0 or v < 0 or u > h or v > w or not corners[u, v]:
                        continue
                    target = n_pix + u * (w + 1) + v
                    tx2 = 2 * u - 1
                    ty2 = 2 * v - 1
                if target == node or target == cand or done[target]:
                    continue
                ox = float(tx2 - cx)
                oy = float(ty2 - cy)
                seg = 0.5 * math.sqrt(ox * ox + oy * oy)
                new_len = base_len + seg
                if new_len > dist[target] + _TIE_M:
                    continue
                if cand == tx:
                    new_loss = 0.0
                else:
                    cross = in_x * oy - in_y * ox
                    dot = in_x * ox + in_y * oy
                    new_loss = base_loss + diffraction_per_rad * math.atan2(abs(cross), dot)
                # Ties in length go to the smaller diffraction loss, then to fewer bends (a line-of-sight
                # path that grazes a corner stays line of sight).
                if new_len >= dist[target] - _TIE_M:
                    if new_loss > loss[target] + 1e-12:
                        continue
                    if new_loss >= loss[target] - 1e-12 and base_bends >= bends[target]:
                        continue
                # Exact line of sight from the candidate bend, memoised per (target, candidate).
                visible = False
                hit = False
                for slot in range(2):
                    if cache_cand[target, slot] == cand:
                        visible = cache_ok[target, slot]
                        hit = True
                if not hit:
                    visible = segment_clear(padded, cx, cy, tx2, ty2)
                    slot = cache_next[target]
                    cache_cand[target, slot] = cand
                    cache_ok[target, slot] = visible
                    cache_next[target] = 1 - slot
                if not visible:
                    continue
                dist[target] = new_len
                loss[target] = new_loss
                parent[target] = cand
                bends[target] = base_bends
                keys, vals, size = heap_push(keys, vals, size, new_len, target)

    length = dist[:n_pix].reshape(h, w).copy()
    deflection_loss = loss[:n_pix].reshape(h, w).copy()
    n_bends = bends[:n_pix].reshape(h, w).copy()
    for i in range(h):
        for j in range(w):
            if obstacle[i, j] != 0:
                length[i, j] = np.inf
                deflection_loss[i, j] = np.inf
    return length, deflection_loss, n_bends
