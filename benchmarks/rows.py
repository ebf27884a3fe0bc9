"""The benchmark's tables of rows: per-trial speed (library against the notebook's
numpy loop), ensembles, and memory against trial length.  Each function takes
the parsed arguments, the rules and a ``log`` (print or nothing) and returns
rows (dicts with a ``kind``) for results.json."""

from __future__ import annotations

from make_table import fmt_bytes
from timing import (
    NUMPY_TWIN,
    Skipper,
    cost_exponent,
    fmt_time,
    library_memory,
    mode_name,
    numpy_memory,
    time_library,
    time_numpy,
)

from rflo.rules import get_rule
from rflo.rules.rtrl import influence_bytes


def speed_rows(args, rules, log):
    """Seconds per trial at every size: the library and the numpy loop, interleaved."""
    results = []
    lib_skip, np_skip = Skipper(args.max_trial_s), Skipper(args.max_trial_s)
    # ---- per-trial speed: library vs numpy, interleaved
    log(f"\n== seconds per trial, T = {args.steps}, float32 (numpy loop: float64, as the notebook)")
    header = (
        f"{'rule':<16}{'mode':<8}{'n_rec':>6}{'library':>12}{'numpy':>12}{'speed-up':>10}"
        f"{'compile':>10}{'lib mem':>11}{'numpy mem':>11}"
    )
    log(header)
    for n_rec in args.sizes:
        for rule in rules:
            modes = [False] + ([True] if get_rule(rule).online else [])
            for online in modes:
                key = (rule, online)
                row = {
                    "kind": "speed",
                    "rule": rule,
                    "mode": mode_name(online),
                    "n_rec": n_rec,
                    "steps": args.steps,
                    "dtype": "float32",
                }
                skip, pred = lib_skip.skip(key, rule, n_rec)
                if skip:
                    row["library"] = {
                        "skipped": f"predicted {pred:.1f} s per trial > {args.max_trial_s} s"
                    }
                else:
                    row["library"] = time_library(
                        rule, online, n_rec, args.steps, args.budget, unroll=args.unroll
                    )
                    lib_skip.record(key, n_rec, row["library"]["seconds_per_trial"])
                if not args.no_numpy and rule in NUMPY_TWIN:
                    skip, pred = np_skip.skip(key, rule, n_rec)
                    if skip:
                        row["numpy"] = {
                            "skipped": f"predicted {pred:.1f} s per trial > {args.max_trial_s} s"
                        }
                    else:
                        row["numpy"] = time_numpy(rule, online, n_rec, args.steps, args.budget)
                        np_skip.record(key, n_rec, row["numpy"]["seconds_per_trial"])
                lib = row["library"].get("seconds_per_trial")
                nump = row.get("numpy", {}).get("seconds_per_trial")
                if lib and nump:
                    row["speedup"] = nump / lib
                    row["speedup_median"] = (
                        row["numpy"]["seconds_per_trial_median"]
                        / row["library"]["seconds_per_trial_median"]
                    )
                    row["speedup_cpu"] = (
                        row["numpy"]["cpu_seconds_per_trial"]
                        / row["library"]["cpu_seconds_per_trial"]
                    )
                results.append(row)
                speedup = f"{row['speedup']:.1f}x" if "speedup" in row else "-"
                compile_s = row["library"].get("compile_s")
                compile_txt = f"{compile_s:.2f} s" if compile_s is not None else "skip"
                log(
                    f"{rule:<16}{mode_name(online):<8}{n_rec:>6}{fmt_time(lib):>12}{fmt_time(nump):>12}"
                    f"{speedup:>10}{compile_txt:>10}"
                    f"{fmt_bytes(row['library'].get('peak_bytes')):>11}"
                    f"{fmt_bytes(row.get('numpy', {}).get('peak_bytes')):>11}",
                    flush=True,
                )
    return results


def ensemble_rows(args, rules, log):
    """Seconds per network-trial of ``train_ensemble``'s compiled call for each K."""
    results = []
    # ---- ensembles
    log(f"\n== ensembles (train_ensemble): seconds per network-trial, T = {args.steps}")
    log(
        f"{'rule':<16}{'mode':<8}{'n_rec':>6}"
        + "".join(f"{'K=' + str(k):>12}" for k in args.ensemble)
        + f"{'K=' + str(max(args.ensemble)) + ' vs K=' + str(min(args.ensemble)):>16}"
    )
    for n_rec in [] if args.no_ensemble else args.ensemble_sizes:
        for rule in rules:
            modes = [False] + ([True] if get_rule(rule).online else [])
            for online in modes:
                cells, per = [], {}
                single = None
                for k in sorted(args.ensemble):
                    row = {
                        "kind": "ensemble",
                        "rule": rule,
                        "mode": mode_name(online),
                        "n_rec": n_rec,
                        "steps": args.steps,
                        "K": k,
                        "dtype": "float32",
                    }
                    if single is not None and single * k > args.max_trial_s:
                        row["library"] = {
                            "skipped": f"predicted {single * k:.1f} s per call > {args.max_trial_s} s"
                        }
                    else:
                        row["library"] = time_library(
                            rule, online, n_rec, args.steps, args.budget, k=k, unroll=args.unroll
                        )
                        if single is None:
                            single = row["library"]["seconds_per_trial"]
                        per[k] = row["library"]["seconds_per_trial"]
                    results.append(row)
                    cells.append(fmt_time(row["library"].get("seconds_per_trial")))
                lo, hi = min(args.ensemble), max(args.ensemble)
                gain = per[lo] / per[hi] if lo in per and hi in per else None
                log(
                    f"{rule:<16}{mode_name(online):<8}{n_rec:>6}"
                    + "".join(f"{c:>12}" for c in cells)
                    + f"{(format(gain, '.1f') + 'x') if gain else '-':>16}",
                    flush=True,
                )
    return results


def memory_rows(args, rules, log):
    """XLA's memory account of a session (and tracemalloc's of the numpy loop)
    against the trial's length."""
    results = []
    # ---- memory against T
    log(
        "\n== memory: library = XLA memory analysis of the compiled session (work = temporaries;"
        " total adds the weights and the task's T-long inputs/targets); numpy = tracemalloc peak"
    )
    log(
        f"{'rule':<16}{'mode':<8}{'n_rec':>6}"
        + "".join(f"{'work T=' + str(t):>16}" for t in args.memory_steps)
        + "".join(f"{'total T=' + str(t):>16}" for t in args.memory_steps)
        + f"{'numpy T=' + str(max(args.memory_steps)):>16}"
    )
    mem_cases = [(r, o) for r in rules for o in ([False] + ([True] if get_rule(r).online else []))]
    for n_rec in [] if args.no_memory else args.memory_sizes:
        for rule, online in mem_cases:
            work, total = [], []
            for steps in args.memory_steps:
                lib = library_memory(rule, online, n_rec, steps)
                row = {
                    "kind": "memory",
                    "rule": rule,
                    "mode": mode_name(online),
                    "n_rec": n_rec,
                    "steps": steps,
                    "dtype": "float32",
                    "library": lib,
                }
                if (
                    not args.no_numpy
                    and rule in NUMPY_TWIN
                    and steps == max(args.memory_steps)
                    and NUMPY_TWIN[rule] == rule
                    and cost_exponent(rule) == 2
                ):
                    row["numpy"] = numpy_memory(rule, online, n_rec, steps)
                results.append(row)
                work.append(fmt_bytes(lib["temp_bytes"]))
                total.append(fmt_bytes(lib["peak_bytes"]))
            log(
                f"{rule:<16}{mode_name(online):<8}{n_rec:>6}"
                + "".join(f"{c:>16}" for c in work + total)
                + f"{fmt_bytes(row.get('numpy', {}).get('peak_bytes')):>16}",
                flush=True,
            )

    for row in results:
        if (
            row["kind"] == "memory"
            and row["rule"] == "rtrl"
            and row["mode"] == "online"
            and row["steps"] == max(args.memory_steps)
        ):
            state = influence_bytes(row["n_rec"], 1, "float32")
            row["rtrl_state_bytes"] = state
            log(
                f"rtrl at n_rec = {row['n_rec']} needs {fmt_bytes(state)} of influence tensors "
                f"(n^3 + n^2 n_in floats) and {fmt_bytes(row['library']['peak_bytes'])} in all "
                f"for a session, whatever T"
            )
    return results
