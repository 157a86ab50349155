"""The fused full-rank kernels (numba): one block of ``_CHUNK`` trials per call, so each row of J is reused
across the block."""

from __future__ import annotations

import numpy as np
from numba import njit

from rnnscope.models._noise import _fill_noise
from rnnscope.models._numerics import _CHUNK, _FASTMATH, _scored_steps, _tanh

# ----------------------------------------------------------------------------------------------------------------------
# Full-rank kernel: one block of up to _CHUNK trials per call, so each row of J is reused across the block


@njit(fastmath=_FASTMATH, error_model="numpy", cache=True)
def _fullrank_forward(J, winT, woutT, h0, u, alpha, noise_std, scale, seed, first, rs, zs, xs, keep_x):
    """Run trials first .. first+C-1 forward. J: (size, size); u: (C, time, inputs).

    Fills rs (C, time+1, size) = tanh(x_t), zs (C, time, outputs), and xs (C, time, size) when keep_x.
    """
    size = h0.shape[0]
    chunk, time, inputs = u.shape
    outputs = woutT.shape[0]
    leak = np.float32(1.0) - alpha
    x = np.empty((chunk, size), np.float32)
    xi = np.zeros(size, np.float32)
    drive = np.empty((chunk, size), np.float32)
    for c in range(chunk):
        for i in range(size):
            x[c, i] = h0[i]
            rs[c, 0, i] = _tanh(h0[i])
    for t in range(time):
        for i in range(size):
            row = J[i]
            for c in range(chunk):
                r = rs[c, t]
                acc = np.float32(0.0)
                for j in range(size):
                    acc += row[j] * r[j]
                drive[c, i] = acc
        for c in range(chunk):
            dc = drive[c]
            for j in range(inputs):
                uj = u[c, t, j]
                if uj != 0:
                    wj = winT[j]
                    for i in range(size):
                        dc[i] += wj[i] * uj
            if noise_std != 0:
                _fill_noise(seed, first + c, t, xi)
            rn = rs[c, t + 1]
            xc = x[c]
            for i in range(size):
                xv = leak * xc[i] + alpha * dc[i] + noise_std * xi[i]
                xc[i] = xv
                rn[i] = _tanh(xv)
            if keep_x:
                for i in range(size):
                    xs[c, t, i] = xc[i]
            for o in range(outputs):
                acc = np.float32(0.0)
                wo = woutT[o]
                for i in range(size):
                    acc += wo[i] * rn[i]
                zs[c, t, o] = acc * scale


@njit(fastmath=_FASTMATH, error_model="numpy", cache=True)
def _fullrank_block_grad(
    J, winT, woutT, h0, u, y, mask, weight, alpha, noise_std, scale, seed, first,
    gJ, gwin, gwout, gh0, losses, want_win, want_wout, work_rs,
):
    """Losses (C,) times weight and gradients of trials first .. first+C-1, added into gJ (size, size),
    gwin (inputs, size), gwout (outputs, size), gh0 (size,). u (C, time, inputs); y (C, time, outputs); mask (C, time);
    work_rs (_CHUNK, time+1, size): scratch space reused across blocks."""
    size = h0.shape[0]
    chunk, inputs = u.shape[0], u.shape[2]
    outputs = woutT.shape[0]
    time = 0
    for c in range(chunk):
        time = max(time, _scored_steps(mask[c]))
    u = u[:, :time]
    rs = work_rs[:chunk, : time + 1]
    zs = np.empty((chunk, time, outputs), np.float32)
    _fullrank_forward(J, winT, woutT, h0, u, alpha, noise_std, scale, seed, first, rs, zs, zs, False)
    for c in range(chunk):
        loss = 0.0
        for t in range(time):
            if mask[c, t] != 0:
                acc = 0.0
                for o in range(outputs):
                    diff = np.float64(zs[c, t, o]) - np.float64(y[c, t, o])
                    acc += diff * diff
                loss += np.float64(mask[c, t]) * acc / outputs
        losses[c] = loss * weight[c]
    leak = np.float32(1.0) - alpha
    d = np.zeros((chunk, size), np.float32)
    back = np.empty((chunk, size), np.float32)
    for t in range(time - 1, -1, -1):
        for c in range(chunk):
            if mask[c, t] != 0:
                rn = rs[c, t + 1]
                dc = d[c]
                coef = np.float32(2.0 * weight[c] / outputs) * mask[c, t] * scale
                for o in range(outputs):
                    g = coef * (zs[c, t, o] - y[c, t, o])
                    wo = woutT[o]
                    if want_wout:
                        gw = gwout[o]
                        for i in range(size):
                            gw[i] += g * rn[i]
                    for i in range(size):
                        dc[i] += g * wo[i] * (np.float32(1.0) - rn[i] * rn[i])
            if want_win:
                for j in range(inputs):
                    uj = u[c, t, j]
                    if uj != 0:
                        gj = gwin[j]
                        cj = alpha * uj
                        for i in range(size):
                            gj[i] += cj * d[c, i]
        # J^T d and dJ += alpha d r^T, one row of J at a time
        for c in range(chunk):
            for j in range(size):
                back[c, j] = np.float32(0.0)
        for i in range(size):
            row = J[i]
            grow = gJ[i]
            for c in range(chunk):
                dci = d[c, i]
                if dci != 0:
                    r = rs[c, t]
                    bc = back[c]
                    adci = alpha * dci
                    for j in range(size):
                        bc[j] += row[j] * dci
                        grow[j] += adci * r[j]
        for c in range(chunk):
            r = rs[c, t]
            for j in range(size):
                d[c, j] = leak * d[c, j] + alpha * (np.float32(1.0) - r[j] * r[j]) * back[c, j]
    for c in range(chunk):
        for i in range(size):
            gh0[i] += d[c, i]


@njit(nogil=True, fastmath=_FASTMATH, error_model="numpy", cache=True)
def _fullrank_grad_items(
    lo, hi, J, winT, woutT, h0, u, y, mask, weights, alpha, noise_std, scale, seeds, want_win, want_wout,
    gJ, gwin, gwout, gh0, losses,
):
    """As :func:`_lowrank_grad_items` with J (K, size, size), items = (network, block of _CHUNK trials); gradients are
    per block: gJ (K, blocks, size, size), gwin (K, blocks, inputs, size), gwout (K, blocks, outputs, size),
    gh0 (K, blocks, size)."""
    trials = weights.shape[1]
    blocks = (trials + _CHUNK - 1) // _CHUNK
    work_rs = np.empty((_CHUNK, u.shape[2] + 1, h0.shape[1]), np.float32)
    for item in range(lo, hi):
        k = item // blocks
        blk = item - k * blocks
        first = blk * _CHUNK
        last = min(first + _CHUNK, trials)
        _fullrank_block_grad(
            J[k], winT[k], woutT[k], h0[k], u[k, first:last], y[k, first:last], mask[k, first:last],
            weights[k, first:last], alpha[k], noise_std[k], scale[k], seeds[k], first,
            gJ[k, blk], gwin[k, blk], gwout[k, blk], gh0[k, blk], losses[k, first:last], want_win, want_wout, work_rs,
        )


@njit(nogil=True, fastmath=_FASTMATH, error_model="numpy", cache=True)
def _fullrank_sim_items(lo, hi, J, winT, woutT, h0, u, alpha, noise_std, scale, seeds, zs, xs, keep_x):
    """Forward only, as :func:`_lowrank_sim_items` with J (K, size, size) and items (network, block of trials)."""
    trials = zs.shape[1]
    time, size = u.shape[2], h0.shape[1]
    blocks = (trials + _CHUNK - 1) // _CHUNK
    work_rs = np.empty((_CHUNK, time + 1, size), np.float32)
    for item in range(lo, hi):
        k = item // blocks
        blk = item - k * blocks
        first = blk * _CHUNK
        last = min(first + _CHUNK, trials)
        _fullrank_forward(
            J[k], winT[k], woutT[k], h0[k], u[k, first:last], alpha[k], noise_std[k], scale[k], seeds[k], first,
            work_rs[: last - first], zs[k, first:last], xs[k, first:last], keep_x,
        )
