"""The fused low-rank kernels (numba): one trial per call, forward then backward through time by hand.

See ``rnnscope.models._fast`` for the design; every function here is bit-for-bit the kernel it always was.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from rnnscope.models._noise import _fill_noise
from rnnscope.models._numerics import _FASTMATH, _scored_steps, _tanh

# ----------------------------------------------------------------------------------------------------------------------
# Low-rank kernel: one trial per call, forward then backward through time


@njit(fastmath=_FASTMATH, error_model="numpy", cache=True)
def _lowrank_forward(mT, nT, winT, woutT, h0, u, alpha, noise_std, scale, seed, trial, rs, kap, zs, xs, keep_x):
    """Run one trial forward.

    mT, nT: (rank, size); winT: (inputs, size); woutT: (outputs, size); h0: (size,); u: (time, inputs).
    Fills rs (time+1, size) = tanh(x_t), kap (time, rank) = n^T r_t / size, zs (time, outputs) = outputs, and
    xs (time, size) = x_{t+1} when keep_x. Few passes over the neurons per step: noise, the leak + noise + first
    rank term, the other rank and input terms, and one pass for tanh fused with the next step's dot products
    (rank 1 or 2 with one output; separate dot-product passes otherwise).
    """
    size = h0.shape[0]
    time, inputs = u.shape
    rank = mT.shape[0]
    outputs = woutT.shape[0]
    inv = np.float32(1.0) / np.float32(size)
    leak = np.float32(1.0) - alpha
    x = np.empty(size, np.float32)
    xi = np.empty(size, np.float32)
    fused = outputs == 1 and rank <= 2
    m0 = mT[0]
    n0 = nT[0]
    n1 = nT[rank - 1]
    w0 = woutT[0]
    r0 = rs[0]
    for i in range(size):
        x[i] = h0[i]
        r0[i] = _tanh(h0[i])
    for k in range(rank):
        acc = np.float32(0.0)
        nk = nT[k]
        for i in range(size):
            acc += nk[i] * r0[i]
        kap[0, k] = acc * inv
    for t in range(time):
        c0 = alpha * kap[t, 0]
        if noise_std != 0:
            _fill_noise(seed, trial, t, xi)
            for i in range(size):
                x[i] = leak * x[i] + noise_std * xi[i] + c0 * m0[i]
        else:
            for i in range(size):
                x[i] = leak * x[i] + c0 * m0[i]
        for k in range(1, rank):
            ck = alpha * kap[t, k]
            mk = mT[k]
            for i in range(size):
                x[i] += ck * mk[i]
        for j in range(inputs):
            uj = u[t, j]
            if uj != 0:
                cj = alpha * uj
                wj = winT[j]
                for i in range(size):
                    x[i] += cj * wj[i]
        if keep_x:
            for i in range(size):
                xs[t, i] = x[i]
        rn = rs[t + 1]
        last = t + 1 == time
        if fused:
            a0 = np.float32(0.0)
            a1 = np.float32(0.0)
            z0 = np.float32(0.0)
            for i in range(size):
                r = _tanh(x[i])
                rn[i] = r
                a0 += n0[i] * r
                a1 += n1[i] * r
                z0 += w0[i] * r
            zs[t, 0] = z0 * scale
            if not last:
                kap[t + 1, 0] = a0 * inv
                if rank == 2:
                    kap[t + 1, 1] = a1 * inv
        else:
            for i in range(size):
                rn[i] = _tanh(x[i])
            if not last:
                for k in range(rank):
                    acc = np.float32(0.0)
                    nk = nT[k]
                    for i in range(size):
                        acc += nk[i] * rn[i]
                    kap[t + 1, k] = acc * inv
            for o in range(outputs):
                acc = np.float32(0.0)
                wo = woutT[o]
                for i in range(size):
                    acc += wo[i] * rn[i]
                zs[t, o] = acc * scale


@njit(fastmath=_FASTMATH, error_model="numpy", cache=True)
def _lowrank_trial_grad(
    mT, nT, winT, woutT, h0, u, y, mask, weight, alpha, noise_std, scale, seed, trial,
    gm, gn, gwin, gwout, gh0, want_win, want_wout, work_rs, work_kap, work_zs,
):
    """Loss of one trial times ``weight`` (float64) and its gradients, added into gm, gn (rank, size),
    gwin (inputs, size), gwout (outputs, size), gh0 (size,). u: (time, inputs); y: (time, outputs); mask: (time,).
    work_rs (time+1, size), work_kap (time, rank), work_zs (time, outputs): scratch space, reused across trials
    (allocating it per trial costs page faults and, with several threads, TLB shootdowns)."""
    size = h0.shape[0]
    inputs = u.shape[1]
    rank = mT.shape[0]
    outputs = woutT.shape[0]
    time = _scored_steps(mask)  # steps after the last scored one do not change the loss
    if time == 0:
        return 0.0
    u = u[:time]
    rs = work_rs[: time + 1]
    kap = work_kap[:time]
    zs = work_zs[:time]
    _lowrank_forward(mT, nT, winT, woutT, h0, u, alpha, noise_std, scale, seed, trial, rs, kap, zs, zs, False)
    loss = 0.0
    for t in range(time):
        if mask[t] != 0:
            acc = 0.0
            for o in range(outputs):
                diff = np.float64(zs[t, o]) - np.float64(y[t, o])
                acc += diff * diff
            loss += np.float64(mask[t]) * acc / outputs
    loss *= weight
    inv = np.float32(1.0) / np.float32(size)
    leak = np.float32(1.0) - alpha
    a_inv = alpha * inv
    one = np.float32(1.0)
    d = np.zeros(size, np.float32)
    back = np.empty(size, np.float32)
    mu = np.empty(rank, np.float32)
    coef = np.float32(2.0 * weight / outputs)
    n0 = nT[0]
    gn0 = gn[0]
    for t in range(time - 1, -1, -1):
        rn = rs[t + 1]
        if mask[t] != 0:
            for o in range(outputs):
                g = coef * mask[t] * (zs[t, o] - y[t, o]) * scale
                wo = woutT[o]
                if want_wout:
                    gw = gwout[o]
                    for i in range(size):
                        gw[i] += g * rn[i]
                        d[i] += g * wo[i] * (one - rn[i] * rn[i])
                else:
                    for i in range(size):
                        d[i] += g * wo[i] * (one - rn[i] * rn[i])
        # d = dL/dx_{t+1}; x_{t+1} = leak x_t + alpha (m kap_t + W_in u_t) + noise
        if want_win:
            for j in range(inputs):
                uj = u[t, j]
                if uj != 0:
                    gj = gwin[j]
                    c = alpha * uj
                    for i in range(size):
                        gj[i] += c * d[i]
        r = rs[t]
        for k in range(rank):
            acc = np.float32(0.0)
            mk = mT[k]
            c = alpha * kap[t, k]
            gk = gm[k]
            for i in range(size):
                acc += mk[i] * d[i]
                gk[i] += c * d[i]
            mu[k] = acc * a_inv
        if rank == 1:
            c0 = mu[0]
            for i in range(size):
                ri = r[i]
                gn0[i] += c0 * ri
                d[i] = leak * d[i] + (one - ri * ri) * (c0 * n0[i])
        elif rank == 2:
            c0 = mu[0]
            c1 = mu[1]
            n1 = nT[1]
            gn1 = gn[1]
            for i in range(size):
                ri = r[i]
                gn0[i] += c0 * ri
                gn1[i] += c1 * ri
                d[i] = leak * d[i] + (one - ri * ri) * (c0 * n0[i] + c1 * n1[i])
        else:
            for i in range(size):
                back[i] = np.float32(0.0)
            for k in range(rank):
                c = mu[k]
                nk = nT[k]
                gk = gn[k]
                for i in range(size):
                    gk[i] += c * r[i]
                    back[i] += nk[i] * c
            for i in range(size):
                d[i] = leak * d[i] + (one - r[i] * r[i]) * back[i]
    for i in range(size):
        gh0[i] += d[i]
    return loss


def _fusable(rank: int, inputs: int, outputs: int) -> bool:
    """Whether the fused low-rank kernels handle this shape (else the general ones run)."""
    return rank <= 2 and inputs <= 2 and outputs == 1


@njit(fastmath=_FASTMATH, error_model="numpy", cache=True)
def _lowrank_forward_fused(mT, nT, winT, woutT, h0, u, alpha, noise_std, scale, seed, trial, rs, kap, zs, xs, keep_x,
                           xi):
    """:func:`_lowrank_forward` for rank <= 2, inputs <= 2 and one output: per step one noise pass and one pass
    doing the update, tanh and the next step's dot products (missing terms get zero coefficients)."""
    size = h0.shape[0]
    time, inputs = u.shape
    rank = mT.shape[0]
    inv = np.float32(1.0) / np.float32(size)
    leak = np.float32(1.0) - alpha
    zero = np.float32(0.0)
    m0, m1 = mT[0], mT[rank - 1]
    n0, n1 = nT[0], nT[rank - 1]
    w0 = woutT[0]
    v0 = winT[0] if inputs > 0 else m0
    v1 = winT[inputs - 1] if inputs > 1 else m0
    x = np.empty(size, np.float32)
    if noise_std == 0:
        for i in range(size):
            xi[i] = zero
    a0 = zero
    a1 = zero
    for i in range(size):
        x[i] = h0[i]
        r = _tanh(h0[i])
        rs[0, i] = r
        a0 += n0[i] * r
        a1 += n1[i] * r
    for t in range(time):
        c0 = alpha * a0 * inv
        c1 = alpha * a1 * inv if rank == 2 else zero
        kap[t, 0] = a0 * inv
        if rank == 2:
            kap[t, 1] = a1 * inv
        e0 = alpha * u[t, 0] if inputs > 0 else zero
        e1 = alpha * u[t, 1] if inputs > 1 else zero
        if noise_std != 0:
            _fill_noise(seed, trial, t, xi)
        rn = rs[t + 1]
        a0 = zero
        a1 = zero
        z0 = zero
        if rank == 1 and inputs == 1:  # the most common shape (rdm and the like), without the absent terms
            for i in range(size):
                xv = leak * x[i] + noise_std * xi[i] + c0 * m0[i] + e0 * v0[i]
                x[i] = xv
                r = _tanh(xv)
                rn[i] = r
                a0 += n0[i] * r
                z0 += w0[i] * r
        else:
            for i in range(size):
                xv = leak * x[i] + noise_std * xi[i] + (c0 * m0[i] + c1 * m1[i]) + (e0 * v0[i] + e1 * v1[i])
                x[i] = xv
                r = _tanh(xv)
                rn[i] = r
                a0 += n0[i] * r
                a1 += n1[i] * r
                z0 += w0[i] * r
        zs[t, 0] = z0 * scale
        if keep_x:
            for i in range(size):
                xs[t, i] = x[i]


@njit(fastmath=_FASTMATH, error_model="numpy", cache=True)
def _fused_step(r, a0, a1, d, gb0, gb1, m0, m1, gm0, gm1, gi0, gi1, leak, c0, c1, k0, k1, e0, e1, rank, active):
    """One loop over the neurons of the backward pass (r, a0, a1, d, ...: (size,); the second column only when
    rank == 2):

        d <- leak d + (1 - r^2) (c0 a0 + c1 a1),   gb0 += c0 r,   gb1 += c1 r

    and, when ``active`` >= 0, with the new d: mu = m^T d, gm += k d, gi += e d (``active`` input columns).
    Stepping back through tanh and J is (r_t, n, gn, leak, a_inv mu); adding a scored step's output is
    (r_{t+1}, w_out, gw_out, 1, g) with c1 = 0. One loop per case, so that no store is wasted on an absent input
    (stores bound these loops), in a function of its own (inlined, LLVM vectorised them less well).
    Returns (mu0, mu1)."""
    one = np.float32(1.0)
    mu0 = np.float32(0.0)
    mu1 = np.float32(0.0)
    size = d.shape[0]
    if rank == 1:
        if active < 0:
            for i in range(size):
                ri = r[i]
                gb0[i] += c0 * ri
                dd = leak * d[i] + (one - ri * ri) * (c0 * a0[i])
                d[i] = dd
        elif active == 0:
            for i in range(size):
                ri = r[i]
                gb0[i] += c0 * ri
                dd = leak * d[i] + (one - ri * ri) * (c0 * a0[i])
                d[i] = dd
                mu0 += m0[i] * dd
                gm0[i] += k0 * dd
        elif active == 1:
            for i in range(size):
                ri = r[i]
                gb0[i] += c0 * ri
                dd = leak * d[i] + (one - ri * ri) * (c0 * a0[i])
                d[i] = dd
                mu0 += m0[i] * dd
                gm0[i] += k0 * dd
                gi0[i] += e0 * dd
        else:
            for i in range(size):
                ri = r[i]
                gb0[i] += c0 * ri
                dd = leak * d[i] + (one - ri * ri) * (c0 * a0[i])
                d[i] = dd
                mu0 += m0[i] * dd
                gm0[i] += k0 * dd
                gi0[i] += e0 * dd
                gi1[i] += e1 * dd
    else:
        if active < 0:
            for i in range(size):
                ri = r[i]
                gb0[i] += c0 * ri
                gb1[i] += c1 * ri
                dd = leak * d[i] + (one - ri * ri) * (c0 * a0[i] + c1 * a1[i])
                d[i] = dd
        elif active == 0:
            for i in range(size):
                ri = r[i]
                gb0[i] += c0 * ri
                gb1[i] += c1 * ri
                dd = leak * d[i] + (one - ri * ri) * (c0 * a0[i] + c1 * a1[i])
                d[i] = dd
                mu0 += m0[i] * dd
                gm0[i] += k0 * dd
                mu1 += m1[i] * dd
                gm1[i] += k1 * dd
        elif active == 1:
            for i in range(size):
                ri = r[i]
                gb0[i] += c0 * ri
                gb1[i] += c1 * ri
                dd = leak * d[i] + (one - ri * ri) * (c0 * a0[i] + c1 * a1[i])
                d[i] = dd
                mu0 += m0[i] * dd
                gm0[i] += k0 * dd
                mu1 += m1[i] * dd
                gm1[i] += k1 * dd
                gi0[i] += e0 * dd
        else:
            for i in range(size):
                ri = r[i]
                gb0[i] += c0 * ri
                gb1[i] += c1 * ri
                dd = leak * d[i] + (one - ri * ri) * (c0 * a0[i] + c1 * a1[i])
                d[i] = dd
                mu0 += m0[i] * dd
                gm0[i] += k0 * dd
                mu1 += m1[i] * dd
                gm1[i] += k1 * dd
                gi0[i] += e0 * dd
                gi1[i] += e1 * dd
    return mu0, mu1



@njit(inline="always")
def _input_terms(u, t, want_win, inputs, alpha, gwin, spare):
    """The input-gradient terms of step t with non-zero input, packed first: (count, e0, e1, g0, g1)."""
    zero = np.float32(0.0)
    count = 0
    e0 = zero
    e1 = zero
    g0 = spare
    g1 = spare
    if want_win:
        for j in range(inputs):
            uj = u[t, j]
            if uj != 0:
                if count == 0:
                    e0 = alpha * uj
                    g0 = gwin[j]
                else:
                    e1 = alpha * uj
                    g1 = gwin[j]
                count += 1
    return count, e0, e1, g0, g1


@njit(fastmath=_FASTMATH, error_model="numpy", cache=True)
def _lowrank_trial_grad_fused(
    mT, nT, winT, woutT, h0, u, y, mask, weight, alpha, noise_std, scale, seed, trial,
    gm, gn, gwin, gwout, gh0, want_win, want_wout, work_rs, work_kap, work_zs, work_xi, work_d, spare,
):
    """:func:`_lowrank_trial_grad` for rank <= 2, inputs <= 2 and one output, with one loop over the neurons per
    step backward (:func:`_fused_step`): stepping d back through tanh and J also accumulates the previous step's
    m^T d, dm and dW_in when that step is not scored; a scored step takes one more loop, which adds the output's
    gradient and does the same accumulations. work_xi, work_d (size,), spare (2, size): scratch."""
    size = h0.shape[0]
    inputs = u.shape[1]
    rank = mT.shape[0]
    time = _scored_steps(mask)
    if time == 0:
        return 0.0
    u = u[:time]
    rs = work_rs[: time + 1]
    kap = work_kap[:time]
    zs = work_zs[:time]
    _lowrank_forward_fused(mT, nT, winT, woutT, h0, u, alpha, noise_std, scale, seed, trial, rs, kap, zs, zs, False,
                           work_xi)
    loss = 0.0
    for t in range(time):
        if mask[t] != 0:
            diff = np.float64(zs[t, 0]) - np.float64(y[t, 0])
            loss += np.float64(mask[t]) * diff * diff
    loss *= weight
    inv = np.float32(1.0) / np.float32(size)
    leak = np.float32(1.0) - alpha
    a_inv = alpha * inv
    one = np.float32(1.0)
    zero = np.float32(0.0)
    m0, m1 = mT[0], mT[rank - 1]
    n0, n1 = nT[0], nT[rank - 1]
    gm0, gm1 = gm[0], gm[rank - 1]
    gn0, gn1 = gn[0], gn[rank - 1]
    w0 = woutT[0]
    gw0 = gwout[0]
    coef = np.float32(2.0 * weight) * scale
    d = work_d
    for i in range(size):
        d[i] = zero
    mu0 = zero
    mu1 = zero
    ready = False  # whether m^T d, dm and dW_in of step t were done by the loop of step t + 1
    for t in range(time - 1, -1, -1):
        if not ready:  # a scored step: add the output's gradient, with m^T d, dm and dW_in in the same loop
            g = coef * mask[t] * (zs[t, 0] - y[t, 0])
            k0 = alpha * kap[t, 0]
            k1 = alpha * kap[t, 1] if rank == 2 else zero
            active, e0, e1, gi0, gi1 = _input_terms(u, t, want_win, inputs, alpha, gwin, spare[0])
            mu0, mu1 = _fused_step(rs[t + 1], w0, w0, d, gw0 if want_wout else spare[0], spare[1], m0, m1, gm0,
                                   gm1, gi0, gi1, one, g, zero, k0, k1, e0, e1, rank, active)
        # d = dL/dx_{t+1} with step t's output included; mu = m^T d
        c0 = a_inv * mu0
        c1 = a_inv * mu1 if rank == 2 else zero
        ready = t > 0 and mask[t - 1] == 0
        if ready:
            k0 = alpha * kap[t - 1, 0]
            k1 = alpha * kap[t - 1, 1] if rank == 2 else zero
            active, e0, e1, gi0, gi1 = _input_terms(u, t - 1, want_win, inputs, alpha, gwin, spare[0])
        else:
            k0 = zero
            k1 = zero
            active, e0, e1, gi0, gi1 = _input_terms(u, t, False, inputs, alpha, gwin, spare[0])
            active = -1
        mu0, mu1 = _fused_step(rs[t], n0, n1, d, gn0, gn1, m0, m1, gm0, gm1, gi0, gi1, leak, c0, c1, k0, k1, e0, e1,
                               rank, active)
    for i in range(size):
        gh0[i] += d[i]
    return loss


@njit(nogil=True, fastmath=_FASTMATH, error_model="numpy", cache=True)
def _lowrank_grad_items(
    lo, hi, mT, nT, winT, woutT, h0, u, y, mask, weights, alpha, noise_std, scale, seeds, want_win, want_wout,
    gm, gn, gwin, gwout, gh0, losses,
):
    """Networks k, trials b: mT, nT (K, rank, size); winT (K, inputs, size); woutT (K, outputs, size); h0 (K, size);
    u (K, B, time, inputs); y (K, B, time, outputs); mask, weights (K, B, time) / (K, B); alpha, noise_std, scale (K,);
    seeds (K,). Items lo..hi-1 (item = k * B + b) fill their per-trial gradients gm, gn (K, B, rank, size) ... and
    losses (K, B) (zeroed by the caller)."""
    trials = weights.shape[1]
    time, size, rank, outputs = u.shape[2], h0.shape[1], mT.shape[1], woutT.shape[1]
    work_rs = np.empty((time + 1, size), np.float32)
    work_kap = np.empty((time, rank), np.float32)
    work_zs = np.empty((time, outputs), np.float32)
    for item in range(lo, hi):
        k = item // trials
        b = item - k * trials
        losses[k, b] = _lowrank_trial_grad(
            mT[k], nT[k], winT[k], woutT[k], h0[k], u[k, b], y[k, b], mask[k, b], weights[k, b],
            alpha[k], noise_std[k], scale[k], seeds[k], b, gm[k, b], gn[k, b], gwin[k, b], gwout[k, b], gh0[k, b],
            want_win, want_wout, work_rs, work_kap, work_zs,
        )


@njit(nogil=True, fastmath=_FASTMATH, error_model="numpy", cache=True)
def _lowrank_grad_items_fused(
    lo, hi, mT, nT, winT, woutT, h0, u, y, mask, weights, alpha, noise_std, scale, seeds, want_win, want_wout,
    gm, gn, gwin, gwout, gh0, losses,
):
    """:func:`_lowrank_grad_items` for the shapes of :func:`_fusable` (a function of its own, so that each is
    compiled only when used)."""
    trials = weights.shape[1]
    time, size, rank, outputs = u.shape[2], h0.shape[1], mT.shape[1], woutT.shape[1]
    work_rs = np.empty((time + 1, size), np.float32)
    work_kap = np.empty((time, rank), np.float32)
    work_zs = np.empty((time, outputs), np.float32)
    work_xi = np.empty(size, np.float32)
    work_d = np.empty(size, np.float32)
    spare = np.zeros((2, size), np.float32)
    for item in range(lo, hi):
        k = item // trials
        b = item - k * trials
        losses[k, b] = _lowrank_trial_grad_fused(
            mT[k], nT[k], winT[k], woutT[k], h0[k], u[k, b], y[k, b], mask[k, b], weights[k, b],
            alpha[k], noise_std[k], scale[k], seeds[k], b, gm[k, b], gn[k, b], gwin[k, b], gwout[k, b], gh0[k, b],
            want_win, want_wout, work_rs, work_kap, work_zs, work_xi, work_d, spare,
        )


@njit(nogil=True, fastmath=_FASTMATH, error_model="numpy", cache=True)
def _lowrank_sim_items(lo, hi, mT, nT, winT, woutT, h0, u, alpha, noise_std, scale, seeds, zs, xs, keep_x):
    """Forward only, items lo..hi-1 (item = k * B + b): zs (K, B, time, outputs); xs (K, B, time, size) when keep_x
    (else any (K, B, 1, 1) array)."""
    trials = zs.shape[1]
    time, size = u.shape[2], h0.shape[1]
    rank = mT.shape[1]
    rs = np.empty((time + 1, size), np.float32)
    kap = np.empty((time, rank), np.float32)
    for item in range(lo, hi):
        k = item // trials
        b = item - k * trials
        _lowrank_forward(
            mT[k], nT[k], winT[k], woutT[k], h0[k], u[k, b], alpha[k], noise_std[k], scale[k], seeds[k], b,
            rs, kap, zs[k, b], xs[k, b], keep_x,
        )


@njit(nogil=True, fastmath=_FASTMATH, error_model="numpy", cache=True)
def _lowrank_sim_items_fused(lo, hi, mT, nT, winT, woutT, h0, u, alpha, noise_std, scale, seeds, zs, xs, keep_x):
    """:func:`_lowrank_sim_items` for the shapes of :func:`_fusable`."""
    trials = zs.shape[1]
    time, size = u.shape[2], h0.shape[1]
    rank = mT.shape[1]
    rs = np.empty((time + 1, size), np.float32)
    kap = np.empty((time, rank), np.float32)
    xi = np.empty(size, np.float32)
    for item in range(lo, hi):
        k = item // trials
        b = item - k * trials
        _lowrank_forward_fused(
            mT[k], nT[k], winT[k], woutT[k], h0[k], u[k, b], alpha[k], noise_std[k], scale[k], seeds[k], b,
            rs, kap, zs[k, b], xs[k, b], keep_x, xi,
        )
