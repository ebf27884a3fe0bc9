"""The command line's side of :class:`rflo.spec.RunSpec`: how each kind of
setting is parsed from text (argparse types, ``--lr IN REC OUT`` or
``--lr NAME=RATE ...``, ``--optimizer-rate X`` or ``--optimizer-rate
NAME=RATE ...``).  :func:`rflo.spec.cli_options` puts them together."""

from __future__ import annotations

import math

__all__ = [
    "KINDS",
    "converters",
    "parse_rates",
    "parse_optimizer_rate",
    "rates_action",
    "rate_text",
]


def _rate(text, flag):
    """A rate >= 0 from ``text`` (ValueError naming ``flag``)."""
    try:
        rate = float(text)
    except ValueError:
        raise ValueError(f"{flag}: expected a learning rate, got {text!r}") from None
    if not (math.isfinite(rate) and rate >= 0):
        raise ValueError(
            f"{flag}: expected a learning rate (learning rates must be finite and >= 0), got {text}"
        )
    return rate


def _named_rates(items, flag, example):
    """``NAME=RATE`` pairs -> ``{name: rate}``, each name given once."""
    out = {}
    for item in items:
        key, _, text = item.rpartition("=")
        rate = _rate(text, flag)
        if not key or key in out:
            raise ValueError(f"{flag}: {item!r} needs a parameter name given once (e.g. {example})")
        out[key] = rate
    return out


def parse_rates(items):
    """Command-line rates: three numbers ``IN REC OUT`` -> a list of three
    floats; ``NAME=RATE`` pairs -> a dict by parameter name.  A ValueError
    says what is wrong."""
    items = [str(x) for x in items]
    named = ["=" in x for x in items]
    if any(named) and not all(named):
        raise ValueError(
            "--lr takes three rates IN REC OUT or NAME=RATE pairs "
            "(e.g. --lr w_rec=0.03 tau=0.1), not a mix"
        )
    if all(named):
        return _named_rates(items, "--lr", "w_rec=0.03")
    out = [_rate(item, "--lr") for item in items]
    if len(out) != 3:
        raise ValueError(f"--lr takes three rates IN REC OUT (or NAME=RATE pairs), got {len(out)}")
    return out


def parse_optimizer_rate(items):
    """``--optimizer-rate``: one number ``X`` (> 0) -> a float; ``NAME=RATE``
    pairs (rates >= 0; 0 freezes the parameter) -> a dict by parameter name.
    A ValueError says what is wrong."""
    items = [str(x) for x in items]
    flag = "--optimizer-rate"
    if len(items) == 1 and "=" not in items[0]:
        rate = _rate(items[0], flag)
        if rate == 0:
            raise ValueError(f"{flag}: expected a finite rate > 0, got {items[0]}")
        return rate
    if not all("=" in x for x in items):
        raise ValueError(
            f"{flag} takes one rate X or NAME=RATE pairs (e.g. {flag} w_in=0.1 w_out=0.005)"
        )
    return _named_rates(items, flag, "w_in=0.1")


def rate_text(rate) -> str:
    """A rate as the command line writes it: ``0.001``, or ``w_in=0.1 w_out=0.005``."""
    if isinstance(rate, dict):
        return " ".join(f"{k}={float(v):g}" for k, v in rate.items())
    return f"{float(rate):g}"


#: argparse keywords by the kind of value (converters named, built on use)
KINDS = {
    "positive_int": dict(type="positive_int"),
    "nonneg_int": dict(type="nonneg_int"),
    "trials": dict(type="trials"),
    "seed": dict(type="seed"),
    "seeds": dict(type="seed", nargs="+", metavar="SEED"),
    "tau": dict(type="tau"),
    "positive_float": dict(type="positive_float"),
    "nonneg_float": dict(type="nonneg_float", metavar="X"),
    "unit_interval": dict(type="unit_interval", metavar="X"),
    "fraction": dict(type="fraction"),
    "fraction1": dict(type="fraction1"),
    "path": dict(type="path"),
    "set": dict(nargs="+", action="extend", metavar="KEY=VALUE"),
    "rates": dict(nargs="+", action="rates", metavar="RATE"),
    "optimizer_rate": dict(nargs="+", action="optimizer_rate", metavar="RATE"),
}


def converters():
    import argparse
    from pathlib import Path

    from rflo.cells.leaky_tanh import LEAKY_MIN_TAU

    def checked(convert, ok, need):
        def parse(text):
            try:
                value = convert(text)
            except ValueError:
                raise argparse.ArgumentTypeError(f"expected {need}, got {text!r}") from None
            if not ok(value):
                raise argparse.ArgumentTypeError(f"expected {need}, got {text}")
            return value

        return parse

    finite = math.isfinite
    return {
        "positive_int": checked(int, lambda v: v >= 1, "a positive integer"),
        "nonneg_int": checked(int, lambda v: v >= 0, "an integer >= 0"),
        "trials": checked(
            int,
            lambda v: 1 <= v <= 2**31 - 1,
            "a positive integer up to 2147483647 (trials are counted with 32-bit integers)",
        ),
        "seed": checked(int, lambda v: 0 <= v <= 2**32 - 1, "a seed from 0 to 4294967295"),
        "tau": checked(
            float,
            lambda v: finite(v) and v >= LEAKY_MIN_TAU[0],
            f"a time constant >= {LEAKY_MIN_TAU[0]:g} timestep ({LEAKY_MIN_TAU[1]})",
        ),
        "positive_float": checked(float, lambda v: finite(v) and v > 0, "a finite number > 0"),
        "nonneg_float": checked(float, lambda v: finite(v) and v >= 0, "a finite number >= 0"),
        "unit_interval": checked(
            float, lambda v: finite(v) and 0 <= v <= 1, "a number in [0, 1] (e.g. 0.01)"
        ),
        "fraction": checked(
            float, lambda v: finite(v) and 0 < v < 1, "a fraction 0 < x < 1 (e.g. 0.8)"
        ),
        "fraction1": checked(
            float, lambda v: finite(v) and 0 < v <= 1, "a fraction 0 < x <= 1 (e.g. 0.5)"
        ),
        "path": Path,
    }


def rates_action(parse=parse_rates, flag="--lr"):
    """The argparse action of ``--lr`` (:func:`parse_rates`), or of another
    flag of rates (``parse``: e.g. :func:`parse_optimizer_rate`)."""
    import argparse

    class Rates(argparse.Action):
        """``--lr IN REC OUT`` or ``--lr NAME=RATE ...`` (:func:`parse_rates`)."""

        def __call__(self, parser, namespace, values, option_string=None):
            try:
                setattr(namespace, self.dest, parse(values))
            except ValueError as exc:
                text = str(exc)
                parser.error(text if text.startswith(flag) else f"argument {flag}: {text}")

    return Rates
