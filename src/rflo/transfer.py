"""Host arrays onto the device without compiling a program for each.

``jnp.asarray`` of a numpy array, a numpy scalar or a Python number compiles a
small XLA program (``jit(stage)`` or ``jit(convert_element_type)``) for each
new shape and dtype: about 4 ms with a warm compilation cache, 10 ms without
one, a tenth of a one-trial ``rflo train``.  ``jax.device_put`` copies the
same array without one.  :func:`device_array` is ``jnp.asarray`` by that
route: the same dtype, the same values, bit for bit.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["device_array", "device_tree"]


def device_array(a, dtype=None):
    """``jnp.asarray(a, dtype)`` without compiling a program where ``a`` is on
    the host.  A JAX array (or a tracer) goes through ``jnp.asarray``; a
    Python number without ``dtype`` too (it keeps JAX's weak type)."""
    if isinstance(a, jax.Array):
        return a if dtype is None or a.dtype == np.dtype(dtype) else jnp.asarray(a, dtype)
    if dtype is None:
        if not isinstance(a, (np.ndarray, np.generic)):
            return jnp.asarray(a)
        return jax.device_put(a)
    # jnp.asarray under the current precision: float64 stays float64 only with x64 on
    return jax.device_put(np.asarray(a, dtype=jax.dtypes.canonicalize_dtype(dtype)))


def device_tree(tree):
    """:func:`device_array` on every leaf of ``tree`` (``None`` leaves stay None)."""
    return jax.tree_util.tree_map(device_array, tree)
