"""The ``cell`` entry of a network file (:mod:`rflo.io`): a cell written as
JSON ``{"name", "settings"}`` (plus ``"cannot_rebuild"``, why, for a cell a
file cannot rebuild), and the cell read back from it: rebuilt from its name
and settings, or the caller's ``cell=`` checked against it."""

from __future__ import annotations

import json

from rflo.cells import LEAKY_TANH, SynapticCell, cell_names, get_cell, rebuild_cell

__all__ = ["cannot_rebuild", "cell_json", "cell_of"]


def cannot_rebuild(cell):
    """Why a network file cannot rebuild ``cell`` (None if it can): the cell's
    own ``restorable()``, or that of a layer of a stack."""
    why = cell.restorable() if isinstance(cell, SynapticCell) else None
    if why is None:
        for layer in getattr(cell, "layers", ()) if isinstance(cell, SynapticCell) else ():
            why = cannot_rebuild(layer)
            if why is not None:
                break
    return why


def cell_json(cell) -> str:
    """The ``cell`` entry: JSON ``{"name", "settings"}``, plus ``"cannot_rebuild"``
    (why) for a cell that a file cannot rebuild."""
    why = cannot_rebuild(cell)
    spec = {"name": cell.name, "settings": cell.settings()}
    if why is not None:
        spec["cannot_rebuild"] = str(why)
    try:
        return json.dumps(spec)
    except (TypeError, ValueError):
        if why is None:
            raise ValueError(
                f"cell {cell.name!r}: its settings {spec['settings']!r} are not "
                "plain data (JSON), so a file cannot hold them"
            ) from None
        spec["settings"] = {}  # the caller gives the cell back on loading anyway
        return json.dumps(spec)


def _cell_spec(arrays, source):
    """The file's ``cell`` entry as a dict (None: the default leaky tanh cell)."""
    if "cell" not in arrays:
        return None
    raw = arrays["cell"]
    if raw.dtype.kind != "U" or raw.ndim != 0:
        raise ValueError(f"{source}: 'cell' must be one string (JSON), got {raw.dtype} {raw.shape}")
    try:
        spec = json.loads(str(raw))
        if (
            not isinstance(spec, dict)
            or not isinstance(spec["name"], str)
            or not isinstance(spec.get("settings", {}), dict)
        ):
            raise TypeError('expected {"name": ..., "settings": {...}}')
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"{source}: unreadable cell description ({exc})") from None
    return spec


def _plain(settings):
    try:
        return json.loads(json.dumps(settings))
    except (TypeError, ValueError):
        return None


def cell_of(arrays, source, cell=None):
    """The file's cell: rebuilt from its name and settings, or ``cell`` (the
    caller's), which must be the file's (same name; same settings where a file
    can rebuild it)."""
    spec = _cell_spec(arrays, source)
    if cell is not None:
        return _given_cell(spec, cell, source)
    if spec is None:
        return LEAKY_TANH
    name, settings = spec["name"], spec.get("settings", {})
    why = spec.get("cannot_rebuild")
    if why is not None:
        raise ValueError(
            f"{source}: {why}; pass the cell you built it with: rflo.load_network(path, cell=...)"
        )
    if name.lower() not in cell_names():
        raise ValueError(
            f"{source}: the network's cell {name!r} is not a registered cell (known: "
            f"{', '.join(cell_names())}); import the module that registers it, or "
            "pass the cell: rflo.load_network(path, cell=...)"
        )
    try:
        return rebuild_cell(name, settings)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{source}: unreadable cell description ({exc})") from None


def _given_cell(spec, cell, source):
    """The caller's ``cell`` for a file whose cell entry is ``spec``, checked."""
    try:
        cell = get_cell(cell)
    except ValueError as exc:
        raise ValueError(f"cell=: {exc}") from None
    name = "leaky_tanh" if spec is None else spec["name"]
    settings = {} if spec is None else spec.get("settings", {})
    if cell.name != name:
        raise ValueError(
            f"{source}: the file holds a network of cell {name!r}, but cell= is {cell.name!r}"
        )
    if cannot_rebuild(cell) is None:
        saved = _plain(LEAKY_TANH.settings()) if spec is None else settings
        if _plain(cell.settings()) != saved:
            raise ValueError(
                f"{source}: the file's {name} cell has the settings {saved}, but "
                f"cell= has {_plain(cell.settings())}"
            )
    elif isinstance(cell, SynapticCell):
        n_in, n_rec = settings.get("n_in"), settings.get("n_rec")
        if all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in (n_in, n_rec)):
            cell = cell.sized(n_in, n_rec)
    return cell
