"""Tasks: data (:class:`Task`) or trial generators (:class:`TaskGenerator`).

* :class:`Task` holds fixed arrays: one trial, or a stack of ``K`` trials that
  training cycles through (the seed notebook's periodic output is one).
* :class:`TaskGenerator` draws a fresh batch of trials from a PRNG key inside
  the compiled training loop.  Built-in generators: :func:`periodic`,
  :func:`ready_set_go`, :func:`delayed_match`, :func:`flip_flop`,
  :func:`reach`, :func:`syllables` and the families of `marschall` and
  `evidence`; ``make_task(name, **params)`` builds one by name.
* :func:`neurogym_task` turns a NeuroGym environment into a stacked Task
  (optional extra ``rflo[neurogym]``).

Tasks are data: they import nothing from the trainer.  The visuomotor
rotation experiment (training, rotating the readout, training on) is
:mod:`rflo.rotation`.
"""

from rflo.tasks.base import Task, periodic_task
from rflo.tasks.builtin import (
    TASKS,
    delayed_match,
    flip_flop,
    make_task,
    periodic,
    ready_set_go,
    task_names,
)
from rflo.tasks.evidence import evidence_accumulation, recall_accuracy
from rflo.tasks.generator import TaskGenerator, argmax_accuracy, sign_accuracy
from rflo.tasks.marschall import add, mimic
from rflo.tasks.motor import cursor_path, reach, syllable_velocity, syllables
from rflo.tasks.neurogym import neurogym_task

__all__ = [
    "Task",
    "periodic_task",
    "TaskGenerator",
    "sign_accuracy",
    "argmax_accuracy",
    "periodic",
    "ready_set_go",
    "delayed_match",
    "flip_flop",
    "reach",
    "syllables",
    "syllable_velocity",
    "cursor_path",
    "add",
    "mimic",
    "evidence_accumulation",
    "recall_accuracy",
    "TASKS",
    "task_names",
    "make_task",
    "neurogym_task",
]
