"""rflo.compiled: a long process frees its compiled programs before the
operating system's limit on memory mappings kills the next compilation."""

import jax
import jax.numpy as jnp
import pytest

from rflo.compiled import mapping_limit, mappings, release_if_crowded


def _compiled_tanh():
    f = jax.jit(lambda x: jnp.tanh(x).sum())
    f(jnp.ones(3)).block_until_ready()
    return f


def test_programs_are_freed_only_when_the_process_is_crowded():
    held = mappings()
    if held is None or mapping_limit() is None:
        pytest.skip("no /proc on this system")
    f = _compiled_tanh()
    assert f._cache_size() == 1
    assert not release_if_crowded(limit=10 * held)  # far from the limit: kept
    assert f._cache_size() == 1
    assert release_if_crowded(limit=held // 2)  # past half the limit: freed
    assert f._cache_size() == 0
    assert float(f(jnp.ones(3))) == pytest.approx(3 * float(jnp.tanh(1.0)))  # compiles again


def test_freeing_programs_returns_their_mappings():
    if mappings() is None:
        pytest.skip("no /proc on this system")
    before = mappings()
    kept = [jax.jit(lambda x, k=k: jnp.sin(x * k).sum()) for k in range(1, 41)]
    for f in kept:
        f(jnp.ones(4)).block_until_ready()
    grown = mappings()
    assert grown >= before + 40  # each compiled program holds mappings of its own
    assert release_if_crowded(limit=1)
    assert mappings() < grown - 40


def test_a_share_outside_zero_to_one_is_refused():
    with pytest.raises(ValueError, match="share must be in"):
        release_if_crowded(share=1.5)
