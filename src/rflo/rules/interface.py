"""What the trainer asks of a learning rule and how it finds one
(:mod:`rflo.rules.base` re-exports every name): :class:`Setup` (what is
trained, the loss, the route; :data:`FEEDBACKS`, :data:`ROUTES`), the
:class:`LearningRule` protocol, and the registry of rules by name
(:func:`register`, :func:`get_rule`, :func:`rule_names`)."""

from __future__ import annotations

from typing import Any, Dict, NamedTuple, Protocol, Tuple, runtime_checkable

import jax

from rflo.losses import SQUARED_ERROR, Loss
from rflo.network import Network

__all__ = [
    "FEEDBACKS",
    "ROUTES",
    "MATRICES",
    "Setup",
    "DEFAULT_SETUP",
    "check_feedback",
    "LearningRule",
    "register",
    "rule_names",
    "get_rule",
]

FEEDBACKS = ("random", "readout")
ROUTES = ("auto", "closed_form", "generic")
MATRICES = ("w_in", "w_rec", "w_out")


class Setup(NamedTuple):
    """What a rule is asked for (static, hashable).

    loss : the :class:`~rflo.losses.Loss` whose error is fed back.
    params : names of the trained parameters (the direction's keys).
    unroll : timesteps per iteration of compiled time loops (speed only).
    route : ``"auto"`` (closed form where one exists, default), ``"closed_form"``
        (refuse otherwise) or ``"generic"`` (Jacobian-vector products always).
    """

    loss: Loss = SQUARED_ERROR
    params: Tuple[str, ...] = MATRICES
    unroll: int = 1
    route: str = "auto"


DEFAULT_SETUP = Setup()


def check_feedback(feedback):
    if feedback not in FEEDBACKS:
        raise ValueError(f"feedback must be one of {FEEDBACKS}, got {feedback!r}")


@runtime_checkable
class LearningRule(Protocol):
    """The interface the trainer needs of a rule (a frozen, hashable object).

    ``name`` and ``online`` say what it is; ``check`` refuses settings it cannot
    train before anything is compiled; ``init``/``advance`` are the per-step
    form and ``trial`` the per-trial form (see :mod:`rflo.rules.base`).
    :class:`~rflo.rules.base.Rule` is the base class that implements the defaults.
    """

    name: str
    online: bool

    def check(self, net: Network, setup: Setup) -> None: ...

    def init(self, net: Network, key: jax.Array, setup: Setup) -> Any: ...

    def advance(self, state, net: Network, h, x_t, y_t, m_t, setup: Setup): ...

    def trial(self, net: Network, x, y_target, mask, key: jax.Array, setup: Setup): ...


_REGISTRY: Dict[str, LearningRule] = {}


def register(rule: LearningRule) -> LearningRule:
    """Add a rule to the registry under ``rule.name``; returns it.  A name can
    be taken once (registering the same rule again is allowed)."""
    if not isinstance(rule, LearningRule):
        raise ValueError(
            f"expected an rflo learning rule (see rflo.rules.Rule), got {type(rule).__name__}"
        )
    old = _REGISTRY.get(rule.name)
    if old is not None and old != rule:
        raise ValueError(
            f"a rule named {rule.name!r} is already registered ({old!r}); give yours another name"
        )
    _REGISTRY[rule.name] = rule
    return rule


def rule_names():
    """Names of the registered rules."""
    return sorted(_REGISTRY)


def get_rule(rule) -> LearningRule:
    """A rule from a registered name (or a rule, returned as is)."""
    if isinstance(rule, LearningRule) and not isinstance(rule, str):
        return rule
    if isinstance(rule, str) and rule.lower() in _REGISTRY:
        return _REGISTRY[rule.lower()]
    raise ValueError(f"unknown learning rule {rule!r}: use one of {rule_names()}")
