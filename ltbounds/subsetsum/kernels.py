"""Compiled CPU kernels (numba) for the subset-sum engine.

These are the fast paths behind :func:`ltbounds.subsetsum.solve`,
:func:`~ltbounds.subsetsum.solve_sparsest`, :func:`~ltbounds.subsetsum.coverage` and
:func:`~ltbounds.subsetsum.covers`. Each has a slow, obvious twin that the tests check it
against: the array-namespace solver in :mod:`ltbounds.subsetsum.solver` and brute-force
enumeration of every subset.

Algorithm (Horowitz and Sahni 1974, "meet in the middle"): split the n candidates into a
left half (indices ``0 .. h-1``, ``h = ceil(n/2)``) and a right half. The sorted list of the
``2**h`` subset sums of a half is built by repeated merging, ``S <- merge(S, S + x_k)``, which
costs ``O(2**h)`` and needs no sort. A two-pointer sweep over the left list (ascending) and
the right list (descending) then finds the closest total sum in ``O(2**h)``.

* Closest subset (:func:`solve_closest`). The last candidate of each half is held out, which
  leaves four pairs of half as long lists, (left + {0, x}) x (right + {0, y}); the four sweeps
  run in lockstep on values alone, so the processor overlaps them. The subsets are recovered
  afterwards from the unsorted half-sums. Rows where the best error is attained more than once
  (a tie), and rows with ``n < 4``, are redone by a tagged sweep that carries every subset as
  a bitmask ("code", bit ``k`` for candidate ``k``) and applies the full tie order.
* Bounded size and sparsest subset (:func:`solve_by_size`). Sizes with few subsets are
  enumerated directly from the unsorted half-sums; larger sizes split the tagged sorted lists
  into cardinality classes and sweep every admissible pair of classes. Both are exact.
* Sparsest subset, first pass (:func:`sparsest_small`). Every subset of the small sizes is
  enumerated for every row, in increasing size, until one is within the tolerance: sizes 1-3
  by direct loops over a table of pair sums, larger ones by pairing cardinality classes. At
  the tolerances of the constructions this settles nearly every row; the rest go to the
  kernels above.
* Sparsest subset, unlimited size (:func:`sparsest_by_hits`). Where the tolerance is tight,
  few subsets meet it: one two-pointer pass over the sorted halves visits each of them once
  and keeps the least (size, error, code), instead of one sweep per cardinality class (2 to
  5 times faster at n = 24 to 28, ``benchmarks/bench_sparsest_hits.py``). Rows with no such
  subset, or too many, go to :func:`solve_by_size`.

Floating point. A half-sum is accumulated in increasing candidate order starting from 0.0,
and a total is ``left + right``; every implementation in this package (and the brute force
in the tests) adds in exactly this order, so they produce bit-identical sums. The sweeps
compare these float sums with the target directly (the pointer moves on ``left + right <=
target``, a monotone test), so the error reported is the exact minimum over all subsets of
``|target - (left + right)|`` in float64.

Ties. Among subsets with equal error the kernels prefer fewer elements, then the smaller
mask read as a binary number (candidate 0 is the lowest bit). Tagged lists keep equal sums
in preference order (first on the left list, last on the right list), so that the sweep
meets the preferred pair of every optimal pair of sums; this makes the rule exact whenever
the sums themselves are exact in float64 (for example dyadic inputs). With rounding
collisions (different sums rounding to one float) the choice is still deterministic.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange, uint64

_BIG_CODE = np.int64(2**62)


@njit(cache=True, nogil=True, inline="always")
def _popcount(code):
    """Number of set bits of a non-negative int64 (SWAR)."""
    code = code - ((code >> 1) & 0x5555555555555555)
    code = (code & 0x3333333333333333) + ((code >> 2) & 0x3333333333333333)
    code = (code + (code >> 4)) & 0x0F0F0F0F0F0F0F0F
    return (code * 0x0101010101010101) >> 56


@njit(cache=True, nogil=True, inline="always")
def _preferred(first, second):
    """True when subset ``first`` comes before ``second``: fewer elements, then smaller code."""
    size_first = _popcount(first)
    size_second = _popcount(second)
    return size_first < size_second or (size_first == size_second and first < second)


@njit(cache=True, nogil=True)
def _sorted_sums_tagged(x, start, count, preferred_first, vals, codes, tmp_vals, tmp_codes):
    """Sorted subset sums of ``x[start:start+count]`` with their codes.

    Writes ``2**count`` entries into one of the two buffer pairs (each of length at least
    ``2**count + 1``, the extra slot holding a sentinel) and returns that pair. Equal sums are
    ordered by preference (fewer elements, then smaller code): preferred first when
    ``preferred_first``, preferred last otherwise. The merge is written without data-dependent
    branches except for the rare case of equal sums.
    """
    vals[0] = 0.0
    codes[0] = 0
    m = 1
    for k in range(count):
        shift = x[start + k]
        bit = np.int64(1) << k
        vals[m] = np.inf
        codes[m] = 0
        i = 0
        j = 0
        for out in range(2 * m):
            first = vals[i]
            second = vals[j] + shift
            take_first = first < second
            if first == second:
                ahead = _preferred(codes[i], codes[j] | bit)
                take_first = ahead if preferred_first else not ahead
            tmp_vals[out] = first if take_first else second
            tmp_codes[out] = codes[i] if take_first else codes[j] | bit
            step = 1 if take_first else 0
            i += step
            j += 1 - step
        m *= 2
        vals, tmp_vals = tmp_vals, vals
        codes, tmp_codes = tmp_codes, codes
    return vals, codes


@njit(cache=True, nogil=True, inline="always")
def _take_low(vals, shifted, out, i, j, position):
    """One step of a merge from the low end: write the smaller head, advance its list."""
    first = vals[i]
    second = shifted[j]
    take = first < second
    out[position] = first if take else second
    step = uint64(take)
    return i + step, j + (uint64(1) - step)


@njit(cache=True, nogil=True, inline="always")
def _take_high(vals, shifted, out, p, q, position):
    """One step of a merge from the high end: write the larger tail, retreat its list."""
    first = vals[p]
    second = shifted[q]
    take = first > second
    out[position] = first if take else second
    step = uint64(take)
    return p - step, q - (uint64(1) - step)


@njit(cache=True, nogil=True, inline="always")
def _merge_level(vals, tmp, shifted, m, shift):
    """``tmp[:2m]`` = sorted merge of ``vals[:m]`` and ``vals[:m] + shift``, from both ends.

    The two ends are independent chains of comparisons that the processor overlaps; indices
    are unsigned so that no negative-index handling is compiled in.
    """
    one = uint64(1)
    for r in range(m):
        shifted[r] = vals[r] + shift
    i = j = uint64(0)
    p = q = m - one
    last = uint64(2) * m - one
    for out in range(m):
        o = uint64(out)
        i, j = _take_low(vals, shifted, tmp, i, j, o)
        p, q = _take_high(vals, shifted, tmp, p, q, last - o)


@njit(cache=True, nogil=True)
def _sorted_values(x, start, count, vals, tmp, shifted):
    """Sorted subset sums of ``x[start:start+count]``, values only.

    Each level merges ``S`` with ``S + x_k`` (:func:`_merge_level`). Buffers hold at least
    ``2**count`` entries (``shifted`` half of that); returns the one holding the result.
    """
    vals[0] = 0.0
    m = uint64(1)
    for k in range(count):
        _merge_level(vals, tmp, shifted, m, x[start + k])
        m *= uint64(2)
        vals, tmp = tmp, vals
    return vals


@njit(cache=True, nogil=True)
def _sorted_value_pair(x, count_a, start_b, count_b, bufs_a, bufs_b):
    """Sorted subset sums of ``x[:count_a]`` and of ``x[start_b:start_b+count_b]``
    (``count_b <= count_a``), their equal-sized levels merged in the same loop so that four
    comparison chains overlap. ``bufs_*`` are (3, width) scratch arrays."""
    one = uint64(1)
    va, ta, sa = bufs_a[0], bufs_a[1], bufs_a[2]
    vb, tb, sb = bufs_b[0], bufs_b[1], bufs_b[2]
    va[0] = 0.0
    vb[0] = 0.0
    m = uint64(1)
    for k in range(count_a):
        if k >= count_b:
            _merge_level(va, ta, sa, m, x[k])
        else:
            shift_a = x[k]
            shift_b = x[start_b + k]
            for r in range(m):
                sa[r] = va[r] + shift_a
                sb[r] = vb[r] + shift_b
            i = j = i2 = j2 = uint64(0)
            p = q = p2 = q2 = m - one
            last = uint64(2) * m - one
            for out in range(m):
                o = uint64(out)
                i, j = _take_low(va, sa, ta, i, j, o)
                p, q = _take_high(va, sa, ta, p, q, last - o)
                i2, j2 = _take_low(vb, sb, tb, i2, j2, o)
                p2, q2 = _take_high(vb, sb, tb, p2, q2, last - o)
            vb, tb = tb, vb
        m *= uint64(2)
        va, ta = ta, va
    return va, vb


@njit(cache=True, nogil=True)
def _doubling_sums(x, start, count, out):
    """``out[c]`` = sum of ``x[start + k]`` over the bits ``k`` of ``c``, in increasing ``k``."""
    out[0] = 0.0
    m = 1
    for k in range(count):
        shift = x[start + k]
        for c in range(m):
            out[c + m] = out[c] + shift
        m *= 2


@njit(cache=True, nogil=True)
def _preferred_code(sums, count, value):
    """Among codes ``c < count`` with ``sums[c] == value``, the preferred one (``-1`` if none)."""
    best = np.int64(-1)
    for c in range(count):
        if sums[c] == value and (best < 0 or _preferred(np.int64(c), best)):
            best = np.int64(c)
    return best


@njit(cache=True, nogil=True)
def _sweep_four_lanes(sa, sa_shifted, la, sb, sb_shifted, lb, target):
    """Four interleaved two-pointer sweeps (values only) over the list pairs
    ``(sa, sb), (sa, sb_shifted), (sa_shifted, sb), (sa_shifted, sb_shifted)``.

    ``sa[0:la]`` ascends with ``sa[la] = inf``; ``sb[1:lb+1]`` ascends with ``sb[0] = -inf``;
    the shifted lists are the same plus the held-out candidate of their half. Each lane runs
    exactly ``la + lb - 1`` steps (the sentinels absorb the tail), so the four lanes advance
    in lockstep, their dependency chains overlap and the loop has no data-dependent branch.
    After ``s`` steps a lane at left index ``i`` is at right index ``lb - s + i``, so only
    ``i`` is carried. Per lane the loop keeps the smallest error, the second smallest (to
    detect ties) and the left index where the smallest was first met.

    Returns ``(errors, second_errors, left_indices)``, each a 4-tuple in lane order.
    """
    one = uint64(1)
    i0 = uint64(0)
    i1 = uint64(0)
    i2 = uint64(0)
    i3 = uint64(0)
    e0 = np.inf
    e1 = np.inf
    e2 = np.inf
    e3 = np.inf
    f0 = np.inf
    f1 = np.inf
    f2 = np.inf
    f3 = np.inf
    w0 = uint64(0)
    w1 = uint64(0)
    w2 = uint64(0)
    w3 = uint64(0)
    top = uint64(lb)
    for _ in range(la + lb - 1):
        s0 = sa[i0] + sb[top + i0]
        s1 = sa[i1] + sb_shifted[top + i1]
        s2 = sa_shifted[i2] + sb[top + i2]
        s3 = sa_shifted[i3] + sb_shifted[top + i3]
        d0 = abs(target - s0)
        d1 = abs(target - s1)
        d2 = abs(target - s2)
        d3 = abs(target - s3)
        w0 = i0 if d0 < e0 else w0
        w1 = i1 if d1 < e1 else w1
        w2 = i2 if d2 < e2 else w2
        w3 = i3 if d3 < e3 else w3
        f0 = min(f0, max(d0, e0))
        f1 = min(f1, max(d1, e1))
        f2 = min(f2, max(d2, e2))
        f3 = min(f3, max(d3, e3))
        e0 = min(e0, d0)
        e1 = min(e1, d1)
        e2 = min(e2, d2)
        e3 = min(e3, d3)
        i0 += uint64(s0 <= target)
        i1 += uint64(s1 <= target)
        i2 += uint64(s2 <= target)
        i3 += uint64(s3 <= target)
        top -= one  # wraps below zero; top + i stays the true (non-negative) right index
    return (e0, e1, e2, e3), (f0, f1, f2, f3), (w0, w1, w2, w3)


@njit(cache=True, nogil=True, inline="always")
def _lane_sum(sa, sa_shifted, sb, sb_shifted, i, j, lane):
    """The sum lane ``lane`` of :func:`_sweep_four_lanes` forms at cell ``(i, j)``."""
    left = sa_shifted[i] if lane >= 2 else sa[i]
    right = sb_shifted[j] if lane % 2 == 1 else sb[j]
    return left + right


@njit(cache=True, nogil=True)
def _unique_best_cell(sa, sa_shifted, la, sb, sb_shifted, lb, target):
    """Run the four-lane sweep; return ``(error, lane, i, j)`` of the single cell attaining
    the smallest error, or ``lane = -1`` when that cell is not provably unique."""
    errors, seconds, lefts = _sweep_four_lanes(sa, sa_shifted, la, sb, sb_shifted, lb, target)
    best = min(min(errors[0], errors[1]), min(errors[2], errors[3]))
    attained = 0
    lane = -1
    for candidate in range(4):
        if errors[candidate] == best:
            attained += 1 if seconds[candidate] > best else 2
            lane = candidate
    if attained != 1:
        return best, -1, 0, 0
    i = np.int64(lefts[lane])
    # the best right index for this left sum sits at the crossing of target: binary search
    low = 0  # the sum at low is <= target always (sb[0] = -inf)
    high = lb + 1
    while high - low > 1:
        middle = (low + high) // 2
        if _lane_sum(sa, sa_shifted, sb, sb_shifted, i, middle, lane) <= target:
            low = middle
        else:
            high = middle
    below = abs(target - _lane_sum(sa, sa_shifted, sb, sb_shifted, i, low, lane))
    above = np.inf
    if high <= lb:
        above = abs(target - _lane_sum(sa, sa_shifted, sb, sb_shifted, i, high, lane))
    if (below == best) == (above == best):
        return best, -1, 0, 0
    return best, lane, i, low if below == best else high


@njit(cache=True, nogil=True)
def _sweep(a_vals, a_codes, a_start, a_len, b_vals, b_codes, b_start, b_len,
           target, shift, best_error, best_size, best_code, best_value):
    """Two-pointer sweep for the sum ``a + b`` closest to ``target``.

    ``a`` ascends from the bottom of its list, ``b`` descends from the top. Updates and returns
    the incumbent ``(error, size, code, value)`` under the order (error, size, code). Runs of
    equal sums must hold the preferred subset first in the ``a`` list and last in the ``b``
    list; then the sweep meets the preferred pair of every pair of runs it needs, so the order
    is honoured exactly whenever the sums are exact.
    """
    i = 0
    j = b_len - 1
    while i < a_len and j >= 0:
        total = a_vals[a_start + i] + b_vals[b_start + j]
        gap = target - total
        error = abs(gap)
        if error <= best_error:
            code = (b_codes[b_start + j] << shift) | a_codes[a_start + i]
            size = _popcount(code)
            if error < best_error or size < best_size or (size == best_size and code < best_code):
                best_error = error
                best_size = size
                best_code = code
                best_value = total
        step = 1 if gap >= 0.0 else 0
        i += step
        j -= 1 - step
    return best_error, best_size, best_code, best_value


@njit(cache=True, nogil=True)
def _write_mask(mask, row, code, n):
    for k in range(n):
        mask[row, k] = ((code >> k) & 1) == 1


@njit(cache=True, nogil=True)
def _split_classes(vals, codes, m, h, out_vals, out_codes, offsets):
    """Stable partition of a sorted tagged list by cardinality.

    Class ``c`` occupies ``out_*[offsets[c] : offsets[c + 1]]``, sorted as the input was.
    """
    for c in range(h + 2):
        offsets[c] = 0
    for r in range(m):
        offsets[_popcount(codes[r]) + 1] += 1
    for c in range(1, h + 2):
        offsets[c] += offsets[c - 1]
    fill = offsets[: h + 1].copy()
    for r in range(m):
        c = _popcount(codes[r])
        out_vals[fill[c]] = vals[r]
        out_codes[fill[c]] = codes[r]
        fill[c] += 1


@njit(cache=True, nogil=True)
def _closest_tagged(x, n, target, buf, ibuf):
    """Exact closest subset with the full tie order: tagged merges and one tagged sweep."""
    h_left = (n + 1) // 2
    h_right = n - h_left
    a_vals, a_codes = _sorted_sums_tagged(x, 0, h_left, True, buf[0], ibuf[0], buf[1], ibuf[1])
    b_vals, b_codes = _sorted_sums_tagged(x, h_left, h_right, False, buf[2], ibuf[2], buf[3], ibuf[3])
    return _sweep(
        a_vals, a_codes, 0, 1 << h_left, b_vals, b_codes, 0, 1 << h_right,
        target, h_left, np.inf, n + 1, _BIG_CODE, 0.0,
    )


@njit(cache=True, parallel=True)
def solve_closest(targets, candidates, blocks, mask, value, error, size):
    """Closest subset for every row: fills ``mask``, ``value``, ``error`` and ``size``.

    Fast path (``n >= 4``): the last candidate of each half is kept out of the sorted lists,
    which leaves four (left, right) list pairs swept in lockstep on values alone. When exactly
    one visited cell attains the smallest error, its subsets are recovered from the unsorted
    half-sums (the preferred subset among equal sums). Otherwise (ties, or ``n < 4``) the row
    is redone by the tagged sweep, which applies the full tie order.
    """
    rows, n = candidates.shape
    h_left = (n + 1) // 2
    h_right = n - h_left
    width = (1 << h_left) + 2
    la = 1 << max(h_left - 1, 0)
    lb = 1 << max(h_right - 1, 0)
    for block in prange(blocks):
        first = block * rows // blocks
        last = (block + 1) * rows // blocks
        buf = np.empty((4, width), dtype=np.float64)
        ibuf = np.empty((4, width), dtype=np.int64)
        fbuf = np.empty((2, width), dtype=np.float64)
        pair_a = np.empty((3, width), dtype=np.float64)
        pair_b = np.empty((3, width), dtype=np.float64)
        sb = np.empty(lb + 1, dtype=np.float64)
        sa_shifted = np.empty(la + 1, dtype=np.float64)
        sb_shifted = np.empty(lb + 1, dtype=np.float64)
        for row in range(first, last):
            x = candidates[row]
            t = targets[row]
            code = np.int64(-1)
            if n >= 4:
                sa, right = _sorted_value_pair(x, h_left - 1, h_left, h_right - 1, pair_a, pair_b)
                xa = x[h_left - 1]
                xb = x[n - 1]
                sa[la] = np.inf
                sb[0] = -np.inf
                sb[1:] = right[:lb]
                for r in range(la + 1):
                    sa_shifted[r] = sa[r] + xa
                for r in range(lb + 1):
                    sb_shifted[r] = sb[r] + xb
                best, lane, i, j = _unique_best_cell(sa, sa_shifted, la, sb, sb_shifted, lb, t)
                if lane >= 0:
                    _doubling_sums(x, 0, h_left - 1, fbuf[0])
                    _doubling_sums(x, h_left, h_right - 1, fbuf[1])
                    left_value = sa[i]
                    right_value = sb[j]
                    code_left = _preferred_code(fbuf[0], la, left_value)
                    code_right = _preferred_code(fbuf[1], lb, right_value)
                    if lane >= 2:
                        left_value += xa
                        code_left |= np.int64(1) << (h_left - 1)
                    if lane % 2 == 1:
                        right_value += xb
                        code_right |= np.int64(1) << (h_right - 1)
                    code = (code_right << h_left) | code_left
                    value[row] = left_value + right_value
                    error[row] = best
                    size[row] = _popcount(code)
            if code < 0:
                best_error, best_size, code, best_value = _closest_tagged(x, n, t, buf, ibuf)
                value[row] = best_value
                error[row] = best_error
                size[row] = best_size
            _write_mask(mask, row, code, n)


@njit(cache=True, nogil=True)
def _enumerate_size(left_sums, right_sums, left_codes, left_offsets, right_codes, right_offsets,
                    s, h_left, h_right, target):
    """Best ``(error, code, value)`` over all subsets of size ``s``, by direct enumeration of
    the pairs (left subset of size ``i``, right subset of size ``s - i``)."""
    best_error = np.inf
    best_code = _BIG_CODE
    best_value = 0.0
    for i in range(max(0, s - h_right), min(h_left, s) + 1):
        j = s - i
        for ia in range(left_offsets[i], left_offsets[i + 1]):
            code_left = left_codes[ia]
            left = left_sums[code_left]
            for ib in range(right_offsets[j], right_offsets[j + 1]):
                code_right = right_codes[ib]
                total = left + right_sums[code_right]
                err = abs(target - total)
                if err <= best_error:
                    code = (code_right << h_left) | code_left
                    if err < best_error or code < best_code:
                        best_error = err
                        best_code = code
                        best_value = total
    return best_error, best_code, best_value


@njit(cache=True, parallel=True)
def solve_by_size(targets, candidates, max_size, tolerance, sparsest, enumerated,
                  left_codes, left_offsets, right_codes, right_offsets, blocks,
                  mask, value, error, size, within):
    """Exact search by cardinality class.

    With ``sparsest`` false: the closest subset with at most ``max_size`` elements. With
    ``sparsest`` true: the smallest size ``s <= max_size`` whose best subset has error
    ``<= tolerance`` (and that best subset), else the closest subset with at most
    ``max_size`` elements; ``within`` records which case applied.

    Sizes ``s < enumerated`` are searched by enumerating their subsets directly from the
    unsorted half-sums (``left_codes[left_offsets[c]:left_offsets[c + 1]]`` lists the left
    subsets of size ``c``, likewise on the right); larger sizes by sweeping every admissible
    pair of cardinality classes of the sorted, tagged half-lists, built only when needed.
    """
    rows, n = candidates.shape
    h_left = (n + 1) // 2
    h_right = n - h_left
    width = (1 << h_left) + 1
    top = min(max_size, n)
    for block in prange(blocks):
        first = block * rows // blocks
        last = (block + 1) * rows // blocks
        buf = np.empty((8, width), dtype=np.float64)
        ibuf = np.empty((6, width), dtype=np.int64)
        a_offsets = np.empty(h_left + 2, dtype=np.int64)
        b_offsets = np.empty(h_right + 2, dtype=np.int64)
        by_size_error = np.empty(top + 1, dtype=np.float64)
        by_size_code = np.empty(top + 1, dtype=np.int64)
        by_size_value = np.empty(top + 1, dtype=np.float64)
        for row in range(first, last):
            x = candidates[row]
            t = targets[row]
            chosen = -1
            computed = -1
            _doubling_sums(x, 0, h_left, buf[6])
            _doubling_sums(x, h_left, h_right, buf[7])
            for s in range(min(enumerated, top + 1)):
                best_error, best_code, best_value = _enumerate_size(
                    buf[6], buf[7], left_codes, left_offsets, right_codes, right_offsets,
                    s, h_left, h_right, t,
                )
                by_size_error[s] = best_error
                by_size_code[s] = best_code
                by_size_value[s] = best_value
                computed = s
                if sparsest and best_error <= tolerance:
                    chosen = s
                    break
            if chosen < 0 and computed < top:
                a_vals, a_codes = _sorted_sums_tagged(
                    x, 0, h_left, True, buf[0], ibuf[0], buf[1], ibuf[1]
                )
                _split_classes(a_vals, a_codes, 1 << h_left, h_left, buf[4], ibuf[4], a_offsets)
                b_vals, b_codes = _sorted_sums_tagged(
                    x, h_left, h_right, False, buf[2], ibuf[2], buf[3], ibuf[3]
                )
                _split_classes(b_vals, b_codes, 1 << h_right, h_right, buf[5], ibuf[5], b_offsets)
                for s in range(computed + 1, top + 1):
                    best_error = np.inf
                    best_size = s
                    best_code = _BIG_CODE
                    best_value = 0.0
                    for i in range(max(0, s - h_right), min(h_left, s) + 1):
                        j = s - i
                        best_error, best_size, best_code, best_value = _sweep(
                            buf[4], ibuf[4], a_offsets[i], a_offsets[i + 1] - a_offsets[i],
                            buf[5], ibuf[5], b_offsets[j], b_offsets[j + 1] - b_offsets[j],
                            t, h_left, best_error, best_size, best_code, best_value,
                        )
                    by_size_error[s] = best_error
                    by_size_code[s] = best_code
                    by_size_value[s] = best_value
                    computed = s
                    if sparsest and best_error <= tolerance:
                        chosen = s
                        break
            within[row] = chosen >= 0
            if chosen < 0:
                chosen = 0
                for s in range(1, computed + 1):
                    if by_size_error[s] < by_size_error[chosen]:
                        chosen = s
            value[row] = by_size_value[chosen]
            error[row] = by_size_error[chosen]
            size[row] = chosen
            _write_mask(mask, row, by_size_code[chosen], n)


@njit(cache=True, nogil=True)
def _sorted_sums_coded(x, start, count, vals, codes, tmp_vals, tmp_codes, shifted, shifted_codes):
    """Sorted subset sums of ``x[start:start+count]`` with their codes, tie order ignored.

    The merges of :func:`_merge_level` (from both ends at once, no data-dependent branch),
    carrying codes. Equal sums are ordered consistently by both ends (an unshifted entry
    before a shifted one, each list in its own order), so the two ends split the output
    exactly and every code appears once; which of several equal sums comes first is not the
    preference order of :func:`_sorted_sums_tagged` (callers that need it must not use this).
    Buffers hold at least ``2**count`` entries (``shifted*`` half of that); returns the pair
    holding the result.
    """
    one = uint64(1)
    vals[0] = 0.0
    codes[0] = 0
    m = uint64(1)
    for k in range(count):
        shift = x[start + k]
        bit = np.int64(1) << k
        for r in range(m):
            shifted[r] = vals[r] + shift
            shifted_codes[r] = codes[r] | bit
        i = j = uint64(0)
        p = q = m - one
        last = uint64(2) * m - one
        for out in range(m):
            o = uint64(out)
            first = vals[i]
            second = shifted[j]
            take = first <= second
            tmp_vals[o] = first if take else second
            tmp_codes[o] = codes[i] if take else shifted_codes[j]
            step = uint64(take)
            i += step
            j += one - step
            first = vals[p]
            second = shifted[q]
            take = first > second
            tmp_vals[last - o] = first if take else second
            tmp_codes[last - o] = codes[p] if take else shifted_codes[q]
            step = uint64(take)
            p -= step
            q -= one - step
        m *= uint64(2)
        vals, tmp_vals = tmp_vals, vals
        codes, tmp_codes = tmp_codes, codes
    return vals, codes


@njit(cache=True, parallel=True)
def sparsest_by_hits(targets, candidates, tolerance, limit, blocks,
                     mask, value, error, size, within, resolved):
    """Sparsest subset within ``tolerance`` by visiting every subset within it, once.

    For each left half-sum ``a`` (ascending) the right half-sums ``b`` with
    ``|t - (a + b)| <= tolerance`` form one run of the sorted right list (``t - (a + b)`` is
    monotone in ``b``, float rounding included), and its ends only move down as ``a`` grows:
    two pointers find every run in ``O(2**h)`` steps plus one visit per subset within the
    tolerance. The answer is the least ``(size, error, code)`` over those subsets: exactly
    the rule of :func:`solve_by_size` with ``sparsest`` (smallest size meeting the
    tolerance, then least error, then least code), in one pass instead of one sweep per
    cardinality class.

    Rows with no subset within the tolerance, or more than ``limit`` of them (a loose
    tolerance, where visiting them all would cost more than the search by size), are left
    unresolved (``resolved`` False, outputs untouched) for :func:`solve_by_size`.
    """
    rows, n = candidates.shape
    h_left = (n + 1) // 2
    h_right = n - h_left
    la = 1 << h_left
    lb = 1 << h_right
    for block in prange(blocks):
        first = block * rows // blocks
        last = (block + 1) * rows // blocks
        buf = np.empty((6, la), dtype=np.float64)
        ibuf = np.empty((6, la), dtype=np.int64)
        for row in range(first, last):
            x = candidates[row]
            t = targets[row]
            a_vals, a_codes = _sorted_sums_coded(
                x, 0, h_left, buf[0], ibuf[0], buf[1], ibuf[1], buf[4], ibuf[4]
            )
            b_vals, b_codes = _sorted_sums_coded(
                x, h_left, h_right, buf[2], ibuf[2], buf[3], ibuf[3], buf[5], ibuf[5]
            )
            best_size = n + 1
            best_error = np.inf
            best_code = _BIG_CODE
            best_value = 0.0
            hi = lb - 1  # last b with t - (a + b) >= -tolerance
            lo = lb  # first b with t - (a + b) <= tolerance
            visited = 0
            for i in range(la):
                a = a_vals[i]
                while hi >= 0 and t - (a + b_vals[hi]) < -tolerance:
                    hi -= 1
                if hi < 0:
                    break
                lo = min(lo, hi + 1)  # every b above hi is too large, so meets the low end
                while lo > 0 and t - (a + b_vals[lo - 1]) <= tolerance:
                    lo -= 1
                visited += hi + 1 - lo
                if visited > limit:
                    break
                code_a = a_codes[i]
                for j in range(lo, hi + 1):
                    total = a + b_vals[j]
                    gap = abs(t - total)
                    code = (b_codes[j] << h_left) | code_a
                    count = _popcount(code)
                    if count < best_size or (count == best_size and (
                        gap < best_error or (gap == best_error and code < best_code)
                    )):
                        best_size = count
                        best_error = gap
                        best_code = code
                        best_value = total
            done = visited <= limit and best_size <= n
            resolved[row] = done
            if done:
                within[row] = True
                value[row] = best_value
                error[row] = best_error
                size[row] = best_size
                _write_mask(mask, row, best_code, n)


@njit(cache=True)
def sorted_subset_sums(x):
    """All ``2**n`` subset sums of ``x``, sorted ascending (each accumulated in index order)."""
    n = x.shape[0]
    vals = np.empty(1 << n, dtype=np.float64)
    tmp = np.empty(1 << n, dtype=np.float64)
    shifted = np.empty(max(1, 1 << (n - 1)), dtype=np.float64)
    return _sorted_values(x, 0, n, vals, tmp, shifted).copy()


@njit(cache=True)
def worst_point(sums, low, high):
    """Exact worst point of ``[low, high]`` for a sorted array of sums.

    Returns ``(z, error, below, above)``: the point of the domain farthest from every sum, its
    distance to the nearest sum, and the sums on either side of it (``-inf``/``inf`` where
    there is none). Among equally bad points the smallest ``z`` is returned.
    """
    m = sums.shape[0]
    first = np.searchsorted(sums, low, side="right")
    below = sums[first - 1] if first > 0 else -np.inf
    above = sums[first] if first < m else np.inf
    best_z = low
    best_error = min(low - below, above - low)
    best_below = below
    best_above = above
    for r in range(first, m):
        left = sums[r - 1] if r > 0 else -np.inf
        right = sums[r]
        if left > high:
            break
        middle = 0.5 * (left + right)
        if low < middle < high:
            gap_error = min(middle - left, right - middle)
            if gap_error > best_error:
                best_error = gap_error
                best_z = middle
                best_below = left
                best_above = right
    last = np.searchsorted(sums, high, side="left")
    below = sums[last - 1] if last > 0 else -np.inf
    above = sums[last] if last < m else np.inf
    high_error = min(high - below, above - high)
    if high_error > best_error:
        best_error = high_error
        best_z = high
        best_below = below
        best_above = above
    return best_z, best_error, best_below, best_above


@njit(cache=True, nogil=True)
def _successor(a_vals, a_len, b_vals, b_len, x):
    """Smallest sum ``a + b >= x`` (``inf`` if none); both lists ascending."""
    best = np.inf
    j = b_len - 1
    for i in range(a_len):
        while j > 0 and a_vals[i] + b_vals[j - 1] >= x:
            j -= 1
        total = a_vals[i] + b_vals[j]
        if total >= x and total < best:
            best = total
    return best


@njit(cache=True, nogil=True)
def _predecessor(a_vals, a_len, b_vals, b_len, x):
    """Largest sum ``a + b <= x`` (``-inf`` if none); both lists ascending."""
    best = -np.inf
    j = 0
    for i in range(a_len - 1, -1, -1):
        while j < b_len - 1 and a_vals[i] + b_vals[j + 1] <= x:
            j += 1
        total = a_vals[i] + b_vals[j]
        if total <= x and total > best:
            best = total
    return best


@njit(cache=True, nogil=True, inline="always")
def _uncovered(left, right, eps, low, high):
    """Whether some ``z`` in ``[low, high]`` is more than ``eps`` from both ``left`` and
    ``right`` while lying between them (``left``/``right`` may be infinite)."""
    above = left + eps
    below = right - eps
    return above < below and above < high and low < below


@njit(cache=True, nogil=True)
def _walk_gap(left, right, eps, low, high, a_vals, a_len, b_vals, b_len):
    """Decide a gap ``(left, right)`` of a sub-collection's sums against the full set.

    Walks upwards from ``left``: jump to the largest full-set sum within ``2 eps`` when that
    leaves no uncovered point, else step to the next full-set sum and test the gap exactly.
    Returns False as soon as an uncovered point is certain.
    """
    current = left
    while _uncovered(current, right, eps, low, high):
        reach = _predecessor(a_vals, a_len, b_vals, b_len, current + 2.0 * eps)
        if reach > current and not _uncovered(current, reach, eps, low, high):
            current = reach
            continue
        following = _successor(a_vals, a_len, b_vals, b_len, np.nextafter(current, np.inf))
        if _uncovered(current, following, eps, low, high):
            return False
        current = following
    return True


@njit(cache=True, parallel=True)
def covers_batch(candidates, eps, low, high, prefix, blocks, out):
    """Exact decision, per row, whether every ``z`` in ``[low, high]`` is within ``eps`` of a
    subset sum of the row.

    The sorted sums of the first ``prefix`` candidates are scanned gap by gap. They are subset
    sums of the whole row, so a gap of theirs that leaves no point uncovered is settled. A gap
    that would leave one is final when the prefix is the whole row, and otherwise is walked
    with the whole row's sums, found by two-pointer queries on its two sorted half-lists
    (built only for rows that need them).
    """
    rows, n = candidates.shape
    m_prefix = min(n, prefix)
    count = 1 << m_prefix
    h_left = (n + 1) // 2
    h_right = n - h_left
    for block in prange(blocks):
        first = block * rows // blocks
        last = (block + 1) * rows // blocks
        p_buf = np.empty((3, count), dtype=np.float64)
        half = np.empty((6, 1 << h_left), dtype=np.float64)
        for row in range(first, last):
            x = candidates[row]
            sums = _sorted_values(x, 0, m_prefix, p_buf[0], p_buf[1], p_buf[2])
            ok = True
            halves_ready = False
            a_vals = half[0]
            b_vals = half[3]
            start = np.searchsorted(sums[:count], low - eps)
            previous = sums[start - 1] if start > 0 else -np.inf
            for r in range(start, count + 1):
                if previous + eps >= high:
                    break
                current = sums[r] if r < count else np.inf
                if _uncovered(previous, current, eps, low, high):
                    if m_prefix == n:
                        ok = False
                        break
                    if not halves_ready:
                        a_vals = _sorted_values(x, 0, h_left, half[0], half[1], half[2])
                        b_vals = _sorted_values(x, h_left, h_right, half[3], half[4], half[5])
                        halves_ready = True
                    if not _walk_gap(previous, current, eps, low, high,
                                     a_vals, 1 << h_left, b_vals, 1 << h_right):
                        ok = False
                        break
                previous = current
            out[row] = ok


@njit(cache=True, nogil=True)
def _class_sums(x, start, parents, elements, offsets, sums, done, upto):
    """Fill the subset sums of the cardinality classes ``done + 1 .. upto`` of one half.

    ``sums[offsets[c]:offsets[c + 1]]`` holds class ``c``; entry ``r`` of it is the sum of
    its parent entry (a subset of class ``c - 1`` whose largest member is below
    ``elements[r]``) plus ``x[start + elements[r]]``, so every sum is accumulated in
    increasing candidate order from 0.0, bit for bit as everywhere else. Returns ``upto``.
    """
    for r in range(offsets[done + 1], offsets[upto + 1]):
        sums[r] = sums[parents[r]] + x[start + elements[r]]
    return upto


@njit(cache=True, nogil=True)
def _best_in_class(target, outer, outer_codes, o_start, o_stop, inner, inner_codes, i_start,
                   i_stop, outer_shift, inner_shift, best_error, best_code, best_value):
    """Fold the pairs (outer subset, inner subset) of two cardinality classes into the
    incumbent ``(error, code, value)`` under the order (error, code).

    Each total is ``outer + inner``: a left half-sum plus a right half-sum (addition is
    commutative, so the order of the operands does not change the float). The inner loop
    keeps four independent minima; the rare outer entries whose minimum reaches the
    incumbent are rescanned for positions and codes.
    """
    for a in range(o_start, o_stop):
        base = outer[a]
        m0 = np.inf
        m1 = np.inf
        m2 = np.inf
        m3 = np.inf
        b = i_start
        while b + 4 <= i_stop:
            m0 = min(m0, abs(target - (base + inner[b])))
            m1 = min(m1, abs(target - (base + inner[b + 1])))
            m2 = min(m2, abs(target - (base + inner[b + 2])))
            m3 = min(m3, abs(target - (base + inner[b + 3])))
            b += 4
        while b < i_stop:
            m0 = min(m0, abs(target - (base + inner[b])))
            b += 1
        smallest = min(min(m0, m1), min(m2, m3))
        if smallest <= best_error:
            code_outer = outer_codes[a] << outer_shift
            for b in range(i_start, i_stop):
                total = base + inner[b]
                if abs(target - total) == smallest:
                    code = code_outer | (inner_codes[b] << inner_shift)
                    if smallest < best_error or code < best_code:
                        best_error = smallest
                        best_code = code
                        best_value = total
    return best_error, best_code, best_value


@njit(cache=True, nogil=True)
def _best_of_class_size(s, target, x, h_left, left_top, right_top, left_parents,
                        left_elements, left_codes, left_offsets, left_sums, right_parents,
                        right_elements, right_codes, right_offsets, right_sums, done):
    """Best ``(error, code, value)`` over the subsets of size ``s``: every left cardinality
    class ``i`` paired with the right class ``s - i`` (the shorter class outside). Class sums
    are filled on first use; ``done`` holds how many classes of each half are filled."""
    best_error = np.inf
    best_code = _BIG_CODE
    best_value = 0.0
    for i in range(max(0, s - right_top), min(left_top, s) + 1):
        j = s - i
        if i > done[0]:
            done[0] = _class_sums(x, 0, left_parents, left_elements, left_offsets, left_sums,
                                  done[0], i)
        if j > done[1]:
            done[1] = _class_sums(x, h_left, right_parents, right_elements, right_offsets,
                                  right_sums, done[1], j)
        a0 = left_offsets[i]
        a1 = left_offsets[i + 1]
        b0 = right_offsets[j]
        b1 = right_offsets[j + 1]
        if a1 - a0 <= b1 - b0:
            best_error, best_code, best_value = _best_in_class(
                target, left_sums, left_codes, a0, a1, right_sums, right_codes, b0, b1,
                0, h_left, best_error, best_code, best_value,
            )
        else:
            best_error, best_code, best_value = _best_in_class(
                target, right_sums, right_codes, b0, b1, left_sums, left_codes, a0, a1,
                h_left, 0, best_error, best_code, best_value,
            )
    return best_error, best_code, best_value


@njit(cache=True, nogil=True)
def _best_single(target, y, n):
    """Best subset of size 1: its sum is ``0.0 + x[k]`` (``y[k]``), whichever half."""
    best_error = np.inf
    best_code = _BIG_CODE
    best_value = 0.0
    for k in range(n):
        gap = abs(target - y[k])
        if gap < best_error:
            best_error = gap
            best_code = np.int64(1) << k
            best_value = y[k]
    return best_error, best_code, best_value


@njit(cache=True, nogil=True)
def _best_pair(target, y, n, pairs):
    """Best subset of size 2, filling ``pairs[j, i] = y[i] + y[j]`` (``i < j``): the sum of a
    pair in either half, or across, since ``0.0 + x`` absorbs a negative zero. Pairs are
    visited in increasing code, so the first least error has the least code."""
    best_error = np.inf
    best_code = _BIG_CODE
    best_value = 0.0
    for j in range(1, n):
        yj = y[j]
        for i in range(j):
            total = y[i] + yj
            pairs[j, i] = total
            gap = abs(target - total)
            if gap < best_error:
                best_error = gap
                best_code = (np.int64(1) << i) | (np.int64(1) << j)
                best_value = total
    return best_error, best_code, best_value


@njit(cache=True, nogil=True)
def _best_triple(target, y, n, h_left, pairs):
    """Best subset ``i < j < k`` of size 3. Its sum is ``(y_i + y_j) + y_k`` (a pair, then the
    third: all in one half, or two left and one right), except ``y_i + (y_j + y_k)`` when
    ``i`` is left and ``j, k`` right; both are read off ``pairs``. Visited in increasing
    code (``k``, then ``j``, then ``i``)."""
    best_error = np.inf
    best_code = _BIG_CODE
    best_value = 0.0
    for k in range(2, n):
        yk = y[k]
        for j in range(1, k):
            split = h_left if j >= h_left else 0
            if split > 0:
                right_pair = pairs[k, j]
                for i in range(split):
                    total = y[i] + right_pair
                    gap = abs(target - total)
                    if gap < best_error:
                        best_error = gap
                        best_code = (np.int64(1) << i) | (np.int64(1) << j) | (np.int64(1) << k)
                        best_value = total
            for i in range(split, j):
                total = pairs[j, i] + yk
                gap = abs(target - total)
                if gap < best_error:
                    best_error = gap
                    best_code = (np.int64(1) << i) | (np.int64(1) << j) | (np.int64(1) << k)
                    best_value = total
    return best_error, best_code, best_value


@njit(cache=True, parallel=True)
def sparsest_small(targets, candidates, tolerance, top, complete,
                   left_parents, left_elements, left_codes, left_offsets,
                   right_parents, right_elements, right_codes, right_offsets,
                   blocks, mask, value, error, size, within, resolved):
    """Sparsest subset by enumerating the small sizes ``0 .. top`` exactly.

    For each size ``s`` in increasing order the best subset of that size (least error, then
    least code) is found by enumeration; the first size whose best error is
    ``<= tolerance`` is the answer (``within``). Sizes 1 to 3 are enumerated directly
    (:func:`_best_single`, :func:`_best_pair`, :func:`_best_triple`), larger ones by pairing
    the cardinality classes of the two halves (:func:`_best_of_class_size`). Every sum is
    formed exactly as ``left + right`` half-sums (module notes), so errors are bit for bit
    those of the other kernels and of brute force.

    Rows where no size up to ``top`` meets the tolerance are left unresolved (``resolved``
    False) for the general search, unless ``complete`` (``top`` is the size limit of the
    query): then the closest subset among sizes ``<= top`` (order: error, size, code) is the
    answer. The class tables (``*_parents``, ``*_elements``, ``*_codes``, ``*_offsets``) list
    the subsets of each half by cardinality up to ``top`` (see :func:`_class_sums`).
    """
    rows, n = candidates.shape
    h_left = (n + 1) // 2
    left_top = min(top, h_left)
    right_top = min(top, n - h_left)
    for block in prange(blocks):
        first = block * rows // blocks
        last = (block + 1) * rows // blocks
        left_sums = np.empty(left_offsets[left_top + 1], dtype=np.float64)
        right_sums = np.empty(right_offsets[right_top + 1], dtype=np.float64)
        done = np.zeros(2, dtype=np.int64)
        y = np.empty(n, dtype=np.float64)
        pairs = np.empty((n, n), dtype=np.float64)
        for row in range(first, last):
            x = candidates[row]
            t = targets[row]
            for k in range(n):
                y[k] = 0.0 + x[k]
            left_sums[0] = 0.0
            right_sums[0] = 0.0
            done[0] = 0
            done[1] = 0
            chosen_error = np.inf
            chosen_size = 0
            chosen_code = np.int64(0)
            chosen_value = 0.0
            found = False
            for s in range(top + 1):
                if s == 0:
                    best_error, best_code, best_value = abs(t), np.int64(0), 0.0
                elif s == 1:
                    best_error, best_code, best_value = _best_single(t, y, n)
                elif s == 2:
                    best_error, best_code, best_value = _best_pair(t, y, n, pairs)
                elif s == 3:
                    best_error, best_code, best_value = _best_triple(t, y, n, h_left, pairs)
                else:
                    best_error, best_code, best_value = _best_of_class_size(
                        s, t, x, h_left, left_top, right_top, left_parents, left_elements,
                        left_codes, left_offsets, left_sums, right_parents, right_elements,
                        right_codes, right_offsets, right_sums, done,
                    )
                found = best_error <= tolerance
                if found or best_error < chosen_error:
                    chosen_error = best_error
                    chosen_size = s
                    chosen_code = best_code
                    chosen_value = best_value
                if found:
                    break
            within[row] = found
            resolved[row] = found or complete
            if found or complete:
                value[row] = chosen_value
                error[row] = chosen_error
                size[row] = chosen_size
                _write_mask(mask, row, chosen_code, n)
