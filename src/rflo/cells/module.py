"""What the Equinox and Flax adapters share: a :class:`~rflo.cells.SynapticCell`
around a module whose arrays are the trained parameters (a flat dict named by
their paths), its static part held by the cell (hashable, compared by
identity), and the checks of unit axes and sizes.  Neither library is
imported here."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from rflo.cells.base import SynapticCell

__all__ = ["_ModuleCell"]

#: parameter names the network uses itself (a module leaf of that name is prefixed)
_RESERVED = ("w_out", "b")


class _Held:
    """A module (with its arrays) or a function the cell refers to: compared
    and hashed by identity, so that the cell stays static, hashable data."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value

    def __eq__(self, other):
        return isinstance(other, _Held) and other.value is self.value

    def __hash__(self):
        return id(self.value)

    def __repr__(self):
        return f"<{type(self.value).__name__}>"


def _path_name(path) -> str:
    """A readable parameter name from a pytree key path: ``layers.0.weight``."""
    parts: list = []
    for k in path:
        for attr in ("name", "key", "idx"):
            if hasattr(k, attr):
                parts.append(str(getattr(k, attr)))
                break
        else:
            parts.append(str(k).strip(".[]'\""))
    name = ".".join(parts) or "param"
    return f"cell.{name}" if name in _RESERVED else name


def _first_line(exc) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def _shapes(tree):
    return jax.tree_util.tree_map(lambda a: tuple(np.shape(a)), tree)


def _zeros_like_spec(spec, dtype):
    """A pytree of zeros from ``spec = (treedef, shapes)``."""
    tree, shapes = spec
    return jax.tree_util.tree_unflatten(tree, [jnp.zeros(s, dtype) for s in shapes])


def _spec(tree):
    """``(treedef, shapes)`` of a pytree of arrays (hashable)."""
    leaves, tree_def = jax.tree_util.tree_flatten(tree)
    return tree_def, tuple(tuple(np.shape(a)) for a in leaves)


def _check_axes(who, axes, shapes):
    """``unit_axes`` checked against the parameters' shapes, axes made non-negative."""
    if axes is None:
        return None
    if not isinstance(axes, dict):
        raise ValueError(
            f"{who}: unit_axes must be a dict {{parameter name: axis}}, got {type(axes).__name__}"
        )
    out = {}
    for k, v in axes.items():
        if not isinstance(k, str) or isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise ValueError(
                f"{who}: unit_axes maps parameter names to integer axes, got {k!r}: {v!r}"
            )
        if shapes is not None:
            if k not in shapes:
                raise ValueError(
                    f"{who}: unit_axes names {k!r}, which the module does not have; "
                    f"its parameters are {sorted(shapes)}"
                )
            nd = len(shapes[k])
            if not -nd <= v < nd:
                raise ValueError(
                    f"{who}: unit axis {v} of {k!r} (shape {shapes[k]}) is out of range"
                )
            v = int(v) % nd
        out[k] = int(v)
    return tuple(sorted(out.items()))


@dataclass(frozen=True)
class _ModuleCell(SynapticCell):
    """What the module adapters share (see :func:`from_equinox`, :func:`rflo.cells.from_flax`).

    Fields: ``source`` (the module instance or the function ``key -> module``,
    held by identity), ``factory`` (whether it is a function), ``names`` (the
    parameters in the order of the module's leaves), ``shapes`` (their shapes
    in the module given, or None), ``declared`` (``(n_in, n_rec)`` the module
    states, entries None where it does not), ``axes`` (the per-unit parameters;
    None: the adapter's default), ``output_fn``, ``state_fn``, ``state_spec``
    (``(treedef, shapes)`` of the default initial state, or None: zeros
    (n_rec,)), ``n_in``, ``n_rec`` (set by ``init_network``) and
    ``module_name`` (the module's class name, for messages and settings).
    """

    name: str = "module"
    source: Optional[_Held] = field(default=None, repr=False)
    factory: bool = False
    names: Tuple[str, ...] = ()
    shapes: Optional[Tuple[Tuple[int, ...], ...]] = field(default=None, repr=False)
    declared: Tuple[Optional[int], Optional[int]] = (None, None)
    axes: Optional[Tuple[Tuple[str, int], ...]] = None
    output_fn: Optional[Callable] = field(default=None, repr=False)
    state_fn: Optional[Callable] = field(default=None, repr=False)
    state_spec: Any = field(default=None, repr=False)
    n_in: Optional[int] = None
    n_rec: Optional[int] = None
    module_name: str = ""

    #: what the error messages call the adapter
    adapter: str = field(default="module", repr=False)

    # ---- what an adapter defines
    def module_params(self, key, dtype, who):
        """The parameters of the module the source gives for ``key`` (a dict by name),
        checked to have the structure the cell was built with."""
        module = self.source.value(key) if self.factory else self.source.value
        values, names, structure = self._split(module)
        if tuple(names) != self.names or structure != self.structure:
            raise ValueError(
                f"{who}: the function returned a module of another structure "
                f"(parameters {names}) than at first ({list(self.names)}); it must "
                "build the same module for every key"
            )
        return {k: jnp.asarray(v, dtype) for k, v in zip(names, values)}

    def module(self, params):
        """The module rebuilt from ``params`` (the flat dict)."""
        raise NotImplementedError

    def call(self, module, state, x):
        """The module's new state."""
        raise NotImplementedError

    def default_axes(self) -> dict:
        """The per-unit parameters when the user gives none."""
        return {}

    def default_output(self, state):
        """The state if it is an array, else its first leaf."""
        return jax.tree_util.tree_leaves(state)[0]

    def kind(self) -> str:
        """The wrapped module's class name."""
        return self.module_name or "module"

    # ---- the SynapticCell interface
    def step(self, params, state, x):
        return self.call(self.module(params), state, x)

    def output(self, params, state):
        if self.output_fn is not None:
            return self.output_fn(self.module(params), state)
        return self.default_output(state)

    def initial_state(self, params):
        if self.state_fn is not None:
            return self.state_fn(self.module(params))
        dtype = jnp.result_type(jax.tree_util.tree_leaves(params)[0])
        if self.state_spec is not None:
            return _zeros_like_spec(self.state_spec, dtype)
        return jnp.zeros((self.sizes(params)[1],), dtype)

    def unit_axes(self, params):
        return dict(self.default_axes() if self.axes is None else self.axes)

    def sizes(self, params):
        if self.n_rec is not None:
            return self.n_in, self.n_rec
        if None not in self.declared:
            return self.declared
        raise ValueError(
            f"cell {self.name!r} has no sizes yet: build the network with "
            "rflo.init_network(n_in, n_rec, n_out, cell=cell)"
        )

    def sized(self, n_in, n_rec):
        n_in, n_rec = int(n_in), int(n_rec)
        a, b = self.declared
        if (a is not None and a != n_in) or (b is not None and b != n_rec):
            raise ValueError(
                f"{self.adapter}: the module ({self.kind()}) takes n_in={a}, n_rec={b}, but the "
                f"network asks for n_in={n_in}, n_rec={n_rec}: build the module for these "
                "sizes or the network for the module's"
            )
        if (self.n_in, self.n_rec) == (n_in, n_rec):
            return self
        cell = dataclasses.replace(self, n_in=n_in, n_rec=n_rec)._on_sized()
        cell.check_runs()
        return cell

    def _on_sized(self):
        """What an adapter learns once the sizes are known (default: nothing)."""
        return self

    def check_runs(self):
        """Raise one line if the module does not run on an input (n_in,) and
        its initial state, or returns a state of another shape."""
        n_in = self.n_in
        try:
            params = jax.eval_shape(
                lambda k: self.init(k, n_in, self.n_rec, jnp.float32), jax.random.PRNGKey(0)
            )
            s0 = jax.eval_shape(self.initial_state, params)
            s1 = jax.eval_shape(
                lambda p, s: self.step(p, s, jnp.zeros((n_in,), jnp.float32)), params, s0
            )
            z = jax.eval_shape(self.output, params, s1)
        except ValueError as exc:
            if str(exc).startswith(self.adapter):
                raise
            raise ValueError(
                f"{self.adapter}: the module ({self.kind()}) does not run on an "
                f"input of shape ({n_in},) and its initial state ({_first_line(exc)})"
                "; check n_in or give initial_state="
            ) from None
        except Exception as exc:  # the module's own error, whatever its type
            raise ValueError(
                f"{self.adapter}: the module ({self.kind()}) does not run on an "
                f"input of shape ({n_in},) and its initial state ({_first_line(exc)})"
                "; check n_in or give initial_state="
            ) from None
        if jax.tree_util.tree_structure(s1) != jax.tree_util.tree_structure(s0) or _shapes(
            s1
        ) != _shapes(s0):
            raise ValueError(
                f"{self.adapter}: the module maps a state shaped {_shapes(s0)} to one "
                f"shaped {_shapes(s1)}; give initial_state= shaped as it returns"
            )
        if len(getattr(z, "shape", ())) != 1:
            raise ValueError(
                f"{self.adapter}: output(module, state) must be a vector (n_z,), "
                f"got shape {getattr(z, 'shape', None)}; give output="
            )

    def settings(self) -> dict:
        return {"name": self.name, "module": self.kind(), "n_in": self.n_in, "n_rec": self.n_rec}

    def restorable(self):
        return (
            f"cell {self.name!r} wraps a {self.kind()} module (rflo.cells.{self.adapter}), "
            "which a file cannot hold"
        )
