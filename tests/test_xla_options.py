"""rflo's XLA options: small loops compiled as one function, and the training
loops' copies elided (rflo.xla_options)."""

import os
import re
import subprocess
import sys

import jax
import jax.numpy as jnp
import pytest
from conftest import session_args

from rflo import xla_options


def _loop(w, h):
    def body(i, h):
        return jnp.tanh(w @ h)

    return jax.lax.fori_loop(0, 10, body, h)


def test_import_sets_the_option_and_xla_hoists_a_small_loop():
    """The test process imported rflo before JAX started (conftest), so XLA
    compiles a small loop as one call; XLA ignores an extra option it does not
    know, so this fails if the option's name ever changes."""
    if os.environ.get(xla_options.ENV_BYTES) or xla_options.status()["why"] is not None:
        pytest.skip(f"this run chose its own XLA options: {xla_options.status()['why']}")
    assert xla_options.status() == {"small_loop_bytes": xla_options.DEFAULT_BYTES, "why": None}
    assert f"{xla_options.OPTION}={xla_options.DEFAULT_BYTES}" in os.environ["XLA_FLAGS"]
    text = jax.jit(_loop).lower(jnp.eye(8), jnp.ones(8)).compile().as_text()
    assert "xla_cpu_small_call" in text


def test_flags_keep_the_users_own_extra_options():
    flags, why = xla_options.flags_with_option("--xla_backend_extra_options=a=1", 3)
    assert flags == "--xla_backend_extra_options=a=1" and "left as it is" in why
    flags, why = xla_options.flags_with_option("--xla_foo=1", 7)
    assert flags == f"--xla_foo=1 --xla_backend_extra_options={xla_options.OPTION}=7"
    assert why is None
    assert xla_options.flags_with_option("", 0) == ("", f"{xla_options.ENV_BYTES}=0")


@pytest.mark.parametrize("text", ["lots", "-1"])
def test_a_bad_threshold_is_a_clear_error(text):
    with pytest.raises(ValueError, match=xla_options.ENV_BYTES):
        xla_options._threshold({xla_options.ENV_BYTES: text})


def test_too_late_is_reported_not_applied():
    """A computation before ``import rflo`` has started JAX's backend: the
    option cannot take effect and status says why."""
    code = (
        "import jax.numpy as jnp; jnp.ones(2).block_until_ready(); import rflo; "
        "print(rflo.xla_options.status()['why'])"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", xla_options.ENV_BYTES)}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert "started before rflo was imported" in out.stdout


def _lstm_online_text(options):
    """The compiled text of one online RFLO trial of a small LSTM (n_rec 8,
    T 20), compiled with ``options``."""
    import rflo
    from rflo.network import trainable_names
    from rflo.trainer import run_trials

    net = rflo.init_network(1, 8, 1, seed=0, cell="lstm")
    lr = {n: 0.01 for n in trainable_names(net)}
    fn = jax.jit(run_trials, static_argnums=(0, 1, 9), compiler_options=options)
    return fn.lower(*session_args(net, "rflo", True, lr, 20)).compile().as_text()


def test_region_analysis_elides_the_copy_of_an_online_trace():
    """Without region-based copy insertion XLA copies the LSTM's online trace
    (4 n_rec x n_rec) at every step; rflo's training loops are compiled with
    it (xla_options.jit), and then no copy of it is left."""
    if not xla_options.compiler_options():
        pytest.skip("this run turned the option off, or its XLA does not know it")
    assert xla_options.compiler_options() == {xla_options.REGION_OPTION: True}
    before = _copies_in_step_loop(_lstm_online_text({}))
    assert "f32[32,8]" in before, f"no trace copy to elide ({before}): the test needs a new case"
    after = _copies_in_step_loop(_lstm_online_text(xla_options.compiler_options()))
    assert "f32[32,8]" not in after, after


def _copies_in_step_loop(text):
    """The shapes copied in the body of the time-step loop (the loop of 19
    iterations) of a compiled program's text."""
    body = re.search(r'body=%([^,\s]+),[^\n]*"known_trip_count":\{"n":"19"\}', text).group(1)
    lines = text.split("\n%" + body + " ", 1)[1].split("\n\n", 1)[0].splitlines()
    return [m.group(1) for m in (re.search(r"= (f32\[[\d,]*\])\S* copy\(", x) for x in lines) if m]


def test_region_analysis_off_or_unknown_compiles_without_it(monkeypatch):
    xla_options.compiler_options.cache_clear()
    try:
        monkeypatch.setenv(xla_options.ENV_REGION, "0")
        assert xla_options.compiler_options() == {}
        xla_options.compiler_options.cache_clear()
        monkeypatch.delenv(xla_options.ENV_REGION)
        monkeypatch.setattr(xla_options, "REGION_OPTION", "xla_cpu_no_such_option_anywhere")
        assert xla_options.compiler_options() == {}  # an XLA without it: no error, no option
    finally:
        xla_options.compiler_options.cache_clear()


def test_the_training_loops_are_compiled_with_the_options():
    from rflo import trainer

    for fn in (trainer.run_chunk, trainer.run_ensemble_chunk):
        assert isinstance(fn, xla_options._Jitted) and fn.__name__ in repr(fn.__wrapped__)
