"""rflo: local online learning rules for recurrent networks, in JAX.

Random feedback local online learning (RFLO; Murray 2019, eLife 8:e43299)
beside the exact methods it approximates (BPTT, RTRL).

>>> import rflo
>>> net = rflo.init_network(1, 50, 1, seed=0)
>>> task = rflo.periodic_task(period=100)
>>> result = rflo.train(net, task, rule="rflo", trials=2000, lr=(0, 0.03, 0.03))
>>> bool(result.loss[-1] < result.loss[0] / 10)
True
"""

from rflo import xla_options  # noqa: F401  (first: sets XLA's options before JAX starts)
from rflo.estimate import grad, value_and_grad
from rflo.io import load_network, save_network
from rflo.network import Network, init_network, network_from_arrays
from rflo.rules import get_rule, rule_names
from rflo.tasks import Task, TaskGenerator, make_task, periodic_task, task_names
from rflo.train import GuardState, TrainResult, evaluate, simulate, train

__version__ = "0.1.0"

__all__ = [
    "Network",
    "init_network",
    "network_from_arrays",
    "load_network",
    "save_network",
    "Task",
    "periodic_task",
    "TaskGenerator",
    "make_task",
    "task_names",
    "train",
    "TrainResult",
    "GuardState",
    "simulate",
    "evaluate",
    "value_and_grad",
    "grad",
    "get_rule",
    "rule_names",
    "__version__",
]
