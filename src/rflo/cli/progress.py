"""What a training command tells its user while and after it runs: the
progress bar (or timed lines), the run's log file, and the summary table."""

from __future__ import annotations

import os
import sys
import time
from datetime import datetime
from pathlib import Path

from rflo.cli.common import random_feedback_rules

__all__ = ["RunLog", "ProgressBar", "show_progress", "clock", "summary"]


def show_progress(args):
    """``"bar"`` (a terminal, or --progress), ``"lines"`` (no terminal: a line
    every ~10 s) or ``"off"`` (--quiet)."""
    if args.quiet:
        return "off"
    return "bar" if args.progress or sys.stderr.isatty() else "lines"


def clock(seconds):
    """``H:MM:SS`` of a number of seconds."""
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class RunLog:
    """``RUN/run.log``: one timestamped line per event and progress report
    (appended; a resumed run goes on in the same file)."""

    def __init__(self, folder, run_id):
        self.path = Path(folder) / "run.log"
        self.write(f"run {run_id}: rflo {' '.join(sys.argv[1:])}")

    def write(self, line):
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(f"{datetime.now().isoformat(timespec='seconds')}  {line}\n")


class ProgressBar:
    """Progress of one rule, fed after every segment: a tqdm bar on a terminal,
    else a one-line report every ``RFLO_PROGRESS_EVERY`` seconds (default 10)
    on stderr; the reports also go to the run's log."""

    def __init__(self, rule, total, mode, log=None):
        self.rule, self.total, self.mode, self.log = rule, total, mode, log
        self.bar = None
        if mode == "bar":
            from tqdm.auto import tqdm

            # delay: only runs longer than a second get a bar
            self.bar = tqdm(
                total=total,
                desc=f"{rule:>8}",
                unit="trial",
                file=sys.stderr,
                delay=0.0 if os.environ.get("RFLO_PROGRESS_NO_DELAY") else 1.0,
                dynamic_ncols=True,
                leave=True,
            )
        self.every = float(os.environ.get("RFLO_PROGRESS_EVERY", 10))
        self.done, self.first = 0, None
        self.start = self.last = time.monotonic()

    def __call__(self, done, total, loss):
        if self.first is None:
            self.first = self.done
        if self.bar is not None:
            self.bar.update(done - self.done)
            self.bar.set_postfix_str(f"loss {loss:.3g}", refresh=False)
        self.done = done
        now = time.monotonic()
        if now - self.last >= self.every:
            self.last = now
            rate = (done - self.first) / max(now - self.start, 1e-9)
            eta = clock((total - done) / rate) if rate > 0 else "?"
            line = (
                f"{self.rule}: {done}/{total} trials ({100 * done / total:.0f}%), "
                f"loss {loss:.3g}, {rate:.0f} trials/s, ETA {eta}"
            )
            if self.mode == "lines":
                print(line, file=sys.stderr, flush=True)
            if self.log is not None:
                self.log.write(line)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def summary(rows, quiet):
    """The table printed at the end of a run: one row per rule."""
    if quiet:
        return
    head = (
        f"{'rule':<16} {'lr_rec':>7} {'final loss':>11} {'best loss':>11} {'alignment':>10} "
        f"{'seconds':>8}"
    )
    print(head)
    print("-" * len(head))
    random = set(random_feedback_rules([r["rule"] for r in rows]))
    for r in rows:  # the alignment with b means something only where errors go through b
        align = f"{r['final_alignment']:>10.3f}" if r["rule"] in random else f"{'-':>10}"
        print(
            f"{r['rule']:<16} {r['lr_rec']:>7g} {r['final_loss']:>11.4g} {r['best_loss']:>11.4g} "
            f"{align} {r['seconds']:>8.2f}"
        )
    if rows and "networks" in rows[0]:
        print(
            f"(losses and alignment: the median over the {rows[0]['networks']} networks of "
            "each rule; results.csv has every network)"
        )
        for r in rows:
            if r["diverged"]:
                print(
                    f"{r['rule']}: {len(r['diverged'])} network(s) diverged and were frozen at "
                    f"their last network within the loss limit (seed, trial): {r['diverged']}"
                )
