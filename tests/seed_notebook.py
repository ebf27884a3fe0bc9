"""A plain-numpy transcription of the seed notebook's ``RNN.run_trial``.

It reproduces what the notebook's *code* computes, quirks included, so that the
library can be compared with it step by step:

* ``u[0] = 0``, ``y[0] = 0``; the q trace starts at ``f'(0) x[0] / tau``;
* RFLO's input trace pairs ``f'(u[t+1])`` with ``x[t]``;
* RTRL multiplies the *columns* of ``w_rec`` by ``f'(u)``;
* BPTT adds the error of step ``t`` into the adjoint of step ``t - 1`` and
  counts the last error twice.

Used by the tests (as the reference) and by benchmarks/ (as the baseline).
Weights are a dict with ``w_in, w_rec, w_out, b``; nothing here is the library.
"""

import numpy as np


def seed_f(x):
    return np.tanh(x)


def seed_df(x):
    return 1 / np.cosh(10 * np.tanh(x / 10)) ** 2


def seed_run_trial(w, h0, tau, x, y_, eta=(0.1, 0.1, 0.1), learning=None, online=False):
    """One trial of the notebook's algorithm.

    ``w``: dict of ``w_in, w_rec, w_out, b`` (copied, not modified);
    ``eta = (eta_in, eta_rec, eta_out)``; ``learning`` in
    ``{None, 'rflo', 'rtrl', 'bptt'}``.  Returns ``(new_weights, y, h, u)``.
    """
    w = {k: np.array(v, dtype=float) for k, v in w.items()}
    eta_in, eta_rec, eta_out = eta
    n_rec, n_in = w["w_in"].shape
    n_out = w["w_out"].shape[0]
    steps = x.shape[0]
    a = 1.0 / tau

    u = np.zeros((steps, n_rec))
    h = np.zeros((steps, n_rec))
    y = np.zeros((steps, n_out))
    err = np.zeros((steps, n_out))
    h[0] = h0
    acc = {"w_in": 0.0, "w_rec": 0.0, "w_out": 0.0}

    if learning == "rtrl":
        p = np.zeros((n_rec, n_rec, n_rec))
        q = np.zeros((n_rec, n_rec, n_in))
        for k in range(n_rec):
            q[k, k, :] = seed_df(u[0, k]) * x[0] * a
    elif learning == "rflo":
        p = np.zeros((n_rec, n_rec))
        q = seed_df(u[0])[:, None] * x[0][None, :] * a

    for t in range(1, steps):
        u[t] = w["w_rec"] @ h[t - 1] + w["w_in"] @ x[t]
        h[t] = h[t - 1] + (-h[t - 1] + seed_f(u[t])) * a
        y[t] = w["w_out"] @ h[t]
        err[t] = y_[t] - y[t]
        d = seed_df(u[t])

        if learning == "rflo":
            p = (1 - a) * p + np.outer(d, h[t - 1]) * a
            q = (1 - a) * q + np.outer(d, x[t - 1]) * a
            fb = w["b"] @ err[t]
            step = {
                "w_out": eta_out / steps * np.outer(err[t], h[t]),
                "w_rec": eta_rec * fb[:, None] * p / steps,
                "w_in": eta_in * fb[:, None] * q / steps,
            }
        elif learning == "rtrl":
            jac = (1 - a) * np.eye(n_rec) + d * w["w_rec"] * a  # columns scaled: the seed's
            p = np.tensordot(jac, p, axes=1)
            q = np.tensordot(jac, q, axes=1)
            for k in range(n_rec):
                p[k, k, :] += d[k] * h[t - 1] * a
                q[k, k, :] += d[k] * x[t] * a
            fb = err[t] @ w["w_out"]
            step = {
                "w_out": eta_out / steps * np.outer(err[t], h[t]),
                "w_rec": eta_rec / steps * np.tensordot(fb, p, axes=1),
                "w_in": eta_in / steps * np.tensordot(fb, q, axes=1),
            }
        else:
            step = None

        if step is not None:
            if online:
                for k in acc:
                    w[k] = w[k] + step[k]
            else:
                for k in acc:
                    acc[k] = acc[k] + step[k]

    if learning == "bptt":
        z = np.zeros((steps, n_rec))
        z[-1] = w["w_out"].T @ err[-1]
        for t in range(steps - 1, 0, -1):
            z[t - 1] = (
                z[t] * (1 - a) + w["w_out"].T @ err[t] + (z[t] * seed_df(u[t])) @ w["w_rec"] * a
            )
            acc["w_out"] = acc["w_out"] + eta_out * np.outer(err[t], h[t]) / steps
            acc["w_rec"] = acc["w_rec"] + eta_rec * a / steps * np.outer(
                z[t] * seed_df(u[t]), h[t - 1]
            )
            acc["w_in"] = acc["w_in"] + eta_in * a / steps * np.outer(z[t] * seed_df(u[t]), x[t])

    if not online and learning is not None:
        for k in acc:
            w[k] = w[k] + acc[k]
    return w, y, h, u


def seed_session(w, h0, tau, x, y_, n_trials, eta, learning, online=False):
    """``n_trials`` trials; returns the final weights and the per-trial losses."""
    losses = []
    for _ in range(n_trials):
        w, y, _, _ = seed_run_trial(w, h0, tau, x, y_, eta, learning, online)
        losses.append(0.5 * np.mean((y_ - y) ** 2))
    return w, np.array(losses)
