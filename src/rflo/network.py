"""The recurrent network of Murray (2019): leaky rate units with a linear readout.

Dynamics, for a trial of ``T`` timesteps ``t = 0 .. T-1`` (``h[0] = h0`` is given)::

    u[t] = w_rec @ h[t-1] + w_in @ x[t]
    h[t] = h[t-1] + (f(u[t]) - h[t-1]) / tau
    y[t] = w_out @ h[t]

with ``f = tanh``.  ``b`` is the fixed random feedback matrix that RFLO uses in
place of ``w_out.T``.

A :class:`Network` is a plain pytree (a ``NamedTuple``) of arrays, so it can be
passed through ``jax.jit``, ``jax.vmap`` and ``jax.tree_util`` unchanged.  The
public functions accept and return numpy arrays.
"""

from __future__ import annotations

import functools
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

from rflo._checks import check_dtype, check_finite_array, check_positive, check_seed, precision
from rflo.cells import get_cell
from rflo.cells.base import Cell, owns_synapses
from rflo.cells.leaky_tanh import DERIVATIVES, LEAKY_TANH, df_exact, df_seed
from rflo.draws import draw_point, draw_readout
from rflo.params import (  # noqa: F401  (the pytree and its parameters by name, re-exported)
    Network,
    apply_constraints,
    get_param,
    param_names,
    params_of,
    trainable_names,
    weights_of,
    with_params,
    with_weights,
)

__all__ = [
    "Network",
    "init_network",
    "network_from_arrays",
    "f",
    "df_seed",
    "df_exact",
    "derivative",
    "DERIVATIVES",
    "weights_of",
    "with_weights",
    "params_of",
    "with_params",
    "get_param",
    "param_names",
    "trainable_names",
    "apply_constraints",
    "to_numpy",
]


def f(u):
    """The rate nonlinearity, ``tanh``."""
    return jnp.tanh(u)


def derivative(name: str):
    """Look up f' by name: ``"seed"`` (the notebook's, default) or ``"exact"``."""
    try:
        return DERIVATIVES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown derivative {name!r}: use one of {sorted(DERIVATIVES)}") from None


def init_network(
    n_in: int,
    n_rec: int,
    n_out: int,
    *,
    seed: int = 0,
    tau: float = 10.0,
    h0=None,
    g: float = 1.5,
    dtype: str = "float32",
    dale: Optional[float] = None,
    connectivity: Optional[float] = None,
    balanced: bool = True,
    cell="leaky_tanh",
) -> Network:
    """A network drawn from the seed notebook's distributions.

    =========  =====================================================
    ``w_in``   ``0.1 * (U[0, 1) - 1)``, i.e. uniform on [-0.1, 0)
    ``w_rec``  ``g * N(0, 1) / sqrt(n_rec)`` with ``g = 1.5``
    ``w_out``  ``0.1 * (2 U[0, 1) - 1) / sqrt(n_rec)``
    ``b``      ``N(0, 1) / sqrt(n_out)``
    ``h0``     ``0.1`` for every unit (the notebook's ``h_init``)
    =========  =====================================================

    The input weights are all negative: the notebook writes ``rand - 1`` where
    ``2 * rand - 1`` was probably meant.  We keep its distribution so that results
    are comparable; pass your own arrays to :func:`network_from_arrays` to change
    it.  (The seed's periodic task has zero input, so it does not matter there.)

    Parameters
    ----------
    n_in, n_rec, n_out : numbers of input, recurrent and output units.
    seed : integer seed of the ``jax.random`` key the weights are drawn from.
    tau : membrane time constant, in timesteps.
    h0 : initial state, shape (n_rec,); default 0.1 everywhere.
    g : gain of the recurrent weights.
    dtype : ``"float32"`` (default) or ``"float64"``.
    dale : fraction of excitatory units for a sign-constrained (Dale's law)
        network, e.g. 0.8; ``None`` for no constraint.  Each weight takes its
        presynaptic unit's sign (see ``balanced``).
    connectivity : fraction of recurrent connections present (a fixed random
        mask); ``None`` for all-to-all.
    cell : the unit model, a name from :func:`rflo.cells.cell_names` or a
        :class:`~rflo.cells.Cell` (default the paper's leaky tanh unit); its own
        parameters (``extra``) are drawn from ``seed`` too.
    balanced : only with ``dale``.  ``True`` (default): inhibitory weights are
        scaled by ``a = n_exc / n_inh`` so that each unit's expected recurrent
        input sums to zero, and all weights by ``sqrt(n_rec / (n_exc + a^2 n_inh))``
        so that each row keeps the unconstrained ``E sum_j w_ij^2 = g^2``
        (``w_ij = sign_j * scale_j * g |z_ij| / sqrt(n_rec)``).  ``False``: weights keep
        the magnitude of the unconstrained draw; with 80 % excitatory units the
        mean input is then strongly positive (an outlier eigenvalue near
        ``(2 dale - 1) g sqrt(2 n_rec / pi)``, about 4 for the defaults) and the network
        starts saturated.

    Returns
    -------
    Network with numpy arrays.
    """
    for name, n in (("n_in", n_in), ("n_rec", n_rec), ("n_out", n_out)):
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"{name} must be a positive integer, got {n!r}")
    check_positive("tau", tau)
    check_positive("g", g, allow_zero=True)
    dtype = check_dtype(dtype)
    if dale is not None and not (0.0 <= float(dale) <= 1.0):
        raise ValueError(f"dale must be a fraction in [0, 1] (e.g. 0.8), got {dale!r}")
    if not isinstance(balanced, (bool, np.bool_)):
        raise ValueError(f"balanced must be True or False, got {balanced!r}")
    if connectivity is not None and not (0.0 < float(connectivity) <= 1.0):
        raise ValueError(f"connectivity must be a fraction in (0, 1], got {connectivity!r}")
    seed = check_seed(seed)
    cell = get_cell(cell)
    if owns_synapses(cell):
        return _init_synaptic(
            cell, n_in, n_rec, n_out, int(seed), dtype, h0=h0, dale=dale, connectivity=connectivity
        )
    from rflo.memory import require_network_memory

    require_network_memory(n_in, n_rec, n_out, dtype, mask=connectivity is not None)

    with precision(dtype):
        arrays = draw_point(
            int(seed), n_in, n_rec, n_out, float(g), dtype, dale, connectivity, bool(balanced)
        )
        extra = None
        if type(cell).extra_params is not Cell.extra_params:  # the key only where it is used
            extra = cell.extra_params(
                jax.random.fold_in(jax.random.PRNGKey(int(seed)), 7), n_rec, dtype
            )
            extra = {k: np.asarray(v) for k, v in extra.items()} or None
    w_in, w_rec, w_out, b, sign, mask = (None if a is None else np.asarray(a) for a in arrays)
    if h0 is None:
        h0 = np.full(n_rec, 0.1, dtype)
    if cell.vector_tau:
        tau = np.full(n_rec, tau, dtype) if np.ndim(tau) == 0 else tau
    return network_from_arrays(
        w_in=w_in,
        w_rec=w_rec,
        w_out=w_out,
        b=b,
        h0=h0,
        tau=tau,
        sign=sign,
        mask=mask,
        dtype=dtype,
        cell=cell,
        extra=extra,
    )


def _init_synaptic(cell, n_in, n_rec, n_out, seed, dtype, *, h0, dale, connectivity):
    """A network of a cell that owns its synapses: the cell's ``init`` (key
    ``fold_in(PRNGKey(seed), 7)``), and ``w_out``, ``b`` drawn as for every cell."""
    for what, value in (("h0", h0), ("dale", dale), ("connectivity", connectivity)):
        if value is not None:
            raise ValueError(
                f"{what} applies to point-neuron cells (w_rec, h0 of the network); "
                f"cell {cell.name!r} owns its synapses and initial state: leave "
                f"{what} out, or constrain the cell's own parameters"
            )
    cell = cell.sized(n_in, n_rec)
    key = jax.random.PRNGKey(seed)
    with precision(dtype):
        params = cell.init(jax.random.fold_in(key, 7), n_in, n_rec, dtype)
        if not isinstance(params, dict) or not params:
            raise ValueError(
                f"cell {cell.name!r}: init must return a non-empty dict of arrays "
                f"by name, got {type(params).__name__}"
            )
        params = {k: np.asarray(v, dtype) for k, v in params.items()}
        n_z = cell.output_size(params)
        _, _, k_out, k_b, _ = jax.random.split(key, 5)
        w_out, b = draw_readout(k_out, k_b, n_out, n_z, dtype)
    return network_from_arrays(
        w_in=None,
        w_rec=None,
        w_out=np.asarray(w_out),
        b=np.asarray(b),
        h0=None,
        tau=None,
        dtype=dtype,
        cell=cell,
        extra=params,
    )


def _synaptic_from_arrays(cell, w_out, b, dtype, extra, **point):
    """Check a network of a cell that owns its synapses (see :class:`Network`)."""
    given = sorted(k for k, v in point.items() if v is not None)
    if given:
        raise ValueError(
            f"cell {cell.name!r} owns its synapses: {given} must be None (its "
            "parameters are the network's extra dict)"
        )
    if not isinstance(extra, dict) or not extra:
        raise ValueError(
            f"cell {cell.name!r}: extra must be the cell's parameters, a dict of arrays by name"
        )
    clash = sorted(set(extra) & {"w_out", "b"})
    if clash:
        raise ValueError(
            f"cell {cell.name!r}: parameter names {clash} are the network's; rename the cell's"
        )
    params = {k: check_finite_array(k, v, dtype=dtype) for k, v in extra.items()}
    n_in, n_rec = cell.sizes(params)
    with precision(dtype):
        want = jax.eval_shape(lambda k: cell.init(k, n_in, n_rec, dtype), jax.random.PRNGKey(0))
    if set(want) != set(params):
        raise ValueError(
            f"cell {cell.name!r} has the parameters {sorted(want)}, got {sorted(params)}"
        )
    for k, v in params.items():
        if v.shape != tuple(want[k].shape):
            raise ValueError(
                f"{k} must have shape {tuple(want[k].shape)} for cell "
                f"{cell.name!r} (n_in={n_in}, n_rec={n_rec}), got {v.shape}"
            )
    n_z = cell.output_size(params)
    w_out = check_finite_array("w_out", w_out, ndim=2, dtype=dtype)
    b = check_finite_array("b", b, ndim=2, dtype=dtype)
    if w_out.shape[1] != n_z:
        raise ValueError(f"w_out must have shape (n_out, n_z={n_z}), got {w_out.shape}")
    if b.shape != (n_z, w_out.shape[0]):
        raise ValueError(
            f"feedback b must have shape (n_z, n_out) = ({n_z}, {w_out.shape[0]}), got {b.shape}"
        )
    return Network(None, None, w_out, b, None, None, None, None, cell, params)


def network_from_arrays(
    *, w_in, w_rec, w_out, b, h0, tau, sign=None, mask=None, dtype=None, cell=None, extra=None
) -> Network:
    """Build a :class:`Network` from given arrays, checking shapes and values.

    ``dtype`` defaults to that of ``w_rec`` if it is a float64 array, else float32.
    ``cell`` (default the leaky tanh unit) and ``extra`` (the cell's own
    parameters by name) as in :class:`Network`.
    """
    cell = LEAKY_TANH if cell is None else get_cell(cell)
    if owns_synapses(cell):
        if dtype is None:
            dtype = "float64" if np.asarray(w_out).dtype == np.float64 else "float32"
        return _synaptic_from_arrays(
            cell,
            w_out,
            b,
            check_dtype(dtype),
            extra,
            w_in=w_in,
            w_rec=w_rec,
            h0=h0,
            tau=tau,
            sign=sign,
            mask=mask,
        )
    if dtype is None:
        dtype = "float64" if np.asarray(w_rec).dtype == np.float64 else "float32"
    dtype = check_dtype(dtype)
    w_rec = check_finite_array("w_rec", w_rec, ndim=2, dtype=dtype)
    n_rec = w_rec.shape[0]
    if w_rec.shape != (n_rec, n_rec):
        raise ValueError(f"w_rec must be square (n_rec, n_rec), got shape {w_rec.shape}")
    w_in = check_finite_array("w_in", w_in, ndim=2, dtype=dtype)
    w_out = check_finite_array("w_out", w_out, ndim=2, dtype=dtype)
    b = check_finite_array("b", b, ndim=2, dtype=dtype)
    h0 = check_finite_array("h0", h0, ndim=1, dtype=dtype)
    n_out = w_out.shape[0]
    if w_in.shape[0] != n_rec:
        raise ValueError(f"w_in must have shape (n_rec={n_rec}, n_in), got {w_in.shape}")
    if w_out.shape[1] != n_rec:
        raise ValueError(f"w_out must have shape (n_out, n_rec={n_rec}), got {w_out.shape}")
    if b.shape != (n_rec, n_out):
        raise ValueError(
            f"feedback b must have shape (n_rec, n_out) = ({n_rec}, {n_out}), got {b.shape}"
        )
    if h0.shape != (n_rec,):
        raise ValueError(f"h0 must have shape (n_rec,) = ({n_rec},), got {h0.shape}")
    if cell.vector_tau and np.ndim(tau) > 0:
        tau = check_finite_array("tau", tau, ndim=1, dtype=dtype)
        if tau.shape != (n_rec,) or np.any(tau <= 0):
            raise ValueError(
                f"tau must be positive numbers of shape (n_rec,) = ({n_rec},), got {tau}"
            )
    else:
        tau = np.asarray(check_positive("tau", tau), dtype)
    low, why = cell.min_tau
    if np.any(tau < low):
        raise ValueError(
            f"tau must be >= {low:g} timesteps for the {cell.name} cell ({why}); "
            f"got {np.min(tau):g}"
        )
    extra = _check_extra(cell, extra, n_rec, dtype)
    if sign is not None:
        sign = check_finite_array("sign", sign, ndim=1, dtype=dtype)
        if sign.shape != (n_rec,) or not np.all(np.abs(sign) == 1):
            raise ValueError("sign must have shape (n_rec,) with entries +1 or -1")
        if np.any(sign[None, :] * w_rec < 0):
            raise ValueError("w_rec breaks Dale's law: w_rec[:, j] must have the sign of unit j")
    if mask is not None:
        mask = check_finite_array("mask", mask, ndim=2, dtype=dtype)
        if mask.shape != (n_rec, n_rec) or not np.all((mask == 0) | (mask == 1)):
            raise ValueError("mask must have shape (n_rec, n_rec) with entries 0 or 1")
        if np.any((mask == 0) & (w_rec != 0)):
            raise ValueError("w_rec has connections where mask is 0")
    return Network(w_in, w_rec, w_out, b, h0, tau, sign, mask, cell, extra)


def _draw_extra_shapes(cell, n_rec, dtype) -> dict:
    with precision(dtype):
        drawn = cell.extra_params(jax.random.PRNGKey(0), n_rec, dtype)
    return {k: np.shape(v) for k, v in drawn.items()}


_extra_shapes_cached = functools.lru_cache(maxsize=64)(_draw_extra_shapes)


def _extra_shapes(cell, n_rec, dtype) -> dict:
    """``{name: shape}`` of the cell's own parameters, drawn once per cell,
    size and dtype (checking a network drew them each time: a quarter of
    checking 64 networks); a cell that cannot be hashed draws them each time."""
    try:
        hash(cell)
    except TypeError:
        return _draw_extra_shapes(cell, n_rec, dtype)
    return _extra_shapes_cached(cell, n_rec, dtype)


def _check_extra(cell, extra, n_rec, dtype):
    """The cell's own parameters, checked against what the cell declares."""
    expected = _extra_shapes(cell, n_rec, dtype)
    extra = dict(extra or {})
    if set(extra) != set(expected):
        raise ValueError(
            f"cell {cell.name!r} has the parameters {sorted(expected)} beyond the "
            f"standard ones, got {sorted(extra)}"
        )
    out = {}
    for k, v in extra.items():
        v = check_finite_array(k, v, ndim=len(expected[k]), dtype=dtype)
        if v.shape != expected[k]:
            raise ValueError(f"{k} must have shape {expected[k]}, got {v.shape}")
        out[k] = v
    return out or None


def to_numpy(tree):
    """Every array leaf of a pytree as a numpy array."""
    return jax.tree_util.tree_map(np.asarray, tree)
