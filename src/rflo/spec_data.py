"""A :class:`~rflo.spec.RunSpec`'s settings as data (its methods delegate
here): the values normalised and checked when a spec is made
(:func:`check_and_normalise`), a spec read from plain settings (names
checked, the closest suggested: :func:`read_dict`) and from TOML text
(:func:`read_toml`), and written as TOML (:func:`toml_text`)."""

from __future__ import annotations

import dataclasses

from rflo.spec_checks import FLOAT_FIELDS, _int, _num

__all__ = ["check_and_normalise", "read_dict", "toml_text", "read_toml"]


def check_and_normalise(spec):
    """Normalise a just-made spec's values in place (it is frozen) and check
    each field; ValueError naming the first that fails."""
    put = lambda k, v: object.__setattr__(spec, k, v)  # noqa: E731  (normalise, frozen)
    if isinstance(spec.lr, (list, tuple)):
        put("lr", tuple(float(x) if _num(x) else x for x in spec.lr))
    elif isinstance(spec.lr, dict):
        put("lr", {str(k): float(x) if _num(x) else x for k, x in spec.lr.items()})
    if isinstance(spec.seeds, tuple):
        put("seeds", list(spec.seeds))
    for name in FLOAT_FIELDS:
        if _int(getattr(spec, name)):
            put(name, float(getattr(spec, name)))
    if isinstance(spec.optimizer_rate, dict):
        rates = spec.optimizer_rate
        put("optimizer_rate", {str(k): float(x) if _num(x) else x for k, x in rates.items()})
    put("set", dict(spec.set or {}))
    for f in dataclasses.fields(spec):
        value = getattr(spec, f.name)
        if not f.metadata["check"](value):
            raise ValueError(f"RunSpec: {f.name!r} must be {f.metadata['need']}, got {value!r}")


def read_dict(cls, data: dict, source):
    """``cls(**data)`` from plain settings (names as in a config file, ``-``
    or ``_``); names it does not know are refused, naming the closest."""
    import difflib

    names = [f.name for f in dataclasses.fields(cls)]
    data = {str(k).replace("-", "_"): v for k, v in dict(data).items()}
    for key in data:
        if key not in names:
            close = difflib.get_close_matches(key, names, n=1)
            raise ValueError(
                f"{source}: unknown setting {key!r}"
                + (f" (did you mean {close[0]!r}?)" if close else "")
            )
    try:
        return cls(**data)
    except ValueError as exc:
        raise ValueError(f"{source}: {str(exc).removeprefix('RunSpec: ')}") from None


def toml_text(spec) -> str:
    """``spec`` as a config file's TOML (None values left out)."""
    import tomli_w

    flat = {k: v for k, v in spec.as_dict().items() if v is not None}
    return tomli_w.dumps(flat)


def read_toml(cls, text: str, source):
    """``cls`` from a config file's TOML text."""
    import sys

    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{source}: not readable TOML ({exc})") from None
    return cls.from_dict(data, source)
