"""rflo's one XLA option: small loops compiled as one function (rflo.xla_options)."""

import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import pytest

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
