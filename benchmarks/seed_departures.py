"""Measure where the seed notebook's code departs from the mathematics.

    python benchmarks/seed_departures.py

For a random network (8 units, T = 30, random inputs and targets, float64) it
compares each rule's one-trial update of each matrix, as the notebook's code
computes it (tests/seed_notebook.py), with the exact gradient (jax.grad of the
summed trial loss, using the notebook's f' so that only the indexing differs).
Prints cosine similarity and relative error; used by docs/departures.md.
"""

import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from seed_notebook import seed_run_trial  # noqa: E402

import rflo  # noqa: E402


@jax.custom_jvp
def _tanh(u):
    return jnp.tanh(u)


@_tanh.defjvp
def _tanh_jvp(p, t):
    return jnp.tanh(p[0]), t[0] / jnp.cosh(10 * jnp.tanh(p[0] / 10)) ** 2


def exact_update(net, x, y, which, lr):
    def loss(w):
        w_in, w_rec, w_out = w

        def body(h, x_t):
            h = h + (_tanh(w_rec @ h + w_in @ x_t) - h) / net.tau
            return h, w_out @ h

        _, out = jax.lax.scan(body, jnp.asarray(net.h0), x[1:])
        return 0.5 * jnp.sum((y[1:] - out) ** 2)

    with jax.enable_x64(True):
        w = tuple(jnp.asarray(getattr(net, k)) for k in ("w_in", "w_rec", "w_out"))
        g = jax.grad(loss)(w)
    return -lr / x.shape[0] * np.asarray(g[("w_in", "w_rec", "w_out").index(which)])


def main():
    rng = np.random.default_rng(0)
    n_in, n_rec, n_out, steps = 2, 8, 1, 30
    net = rflo.network_from_arrays(
        w_in=rng.normal(size=(n_rec, n_in)),
        w_rec=1.5 * rng.normal(size=(n_rec, n_rec)) / np.sqrt(n_rec),
        w_out=rng.normal(size=(n_out, n_rec)) / np.sqrt(n_rec),
        b=rng.normal(size=(n_rec, n_out)),
        h0=0.1 * np.ones(n_rec),
        tau=10.0,
        dtype="float64",
    )
    x = rng.normal(size=(steps, n_in))
    y = rng.normal(size=(steps, n_out))
    task = rflo.Task(x=x, y=y)
    w0 = {k: np.asarray(getattr(net, k)) for k in ("w_in", "w_rec", "w_out", "b")}
    print(
        f"{'rule':<6} {'matrix':<6} {'seed cos':>9} {'seed rel.err':>13} {'rflo lib rel.err':>17}"
    )
    for rule in ("bptt", "rtrl"):
        for i, which in enumerate(("w_in", "w_rec", "w_out")):
            lr = [0.0, 0.0, 0.0]
            lr[i] = 0.1
            w_seed, *_ = seed_run_trial(w0, net.h0, 10.0, x, y, lr, rule)
            d_seed = (w_seed[which] - w0[which]).ravel()
            d_lib = (
                getattr(rflo.train(net, task, rule, 1, tuple(lr)).network, which) - w0[which]
            ).ravel()
            d_true = exact_update(net, x, y, which, 0.1).ravel()
            cos = d_seed @ d_true / (np.linalg.norm(d_seed) * np.linalg.norm(d_true))
            rel = np.linalg.norm(d_seed - d_true) / np.linalg.norm(d_true)
            rel_lib = np.linalg.norm(d_lib - d_true) / np.linalg.norm(d_true)
            print(f"{rule:<6} {which:<6} {cos:>9.4f} {rel:>13.2e} {rel_lib:>17.2e}")


if __name__ == "__main__":
    main()
