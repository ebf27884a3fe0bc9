#!/usr/bin/env bash
# An environment in which benchmarks/run.py can time FranzKnut/jax_rtrl beside rflo.
#
#   benchmarks/peers/install_jax_rtrl.sh JAX_RTRL_SOURCE [VENV]
#   VENV/bin/python benchmarks/run.py --jax-rtrl JAX_RTRL_SOURCE
#
# JAX_RTRL_SOURCE is a checkout of https://github.com/FranzKnut/jax_rtrl (it is
# not on PyPI); the benchmark was measured against commit
# 7d95ca607d021ef8f35bdc281a06c06222442860.  VENV (default
# benchmarks/.venv-peers) gets rflo (editable, from this checkout), the same
# jax as rflo's own environment, and what jax_rtrl's cells import, pinned to the
# versions measured with.  jax_rtrl stays outside rflo's dependencies.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
src="${1:?usage: install_jax_rtrl.sh JAX_RTRL_SOURCE [VENV]}"
venv="${2:-$root/benchmarks/.venv-peers}"
if [ ! -f "$src/jax_rtrl/models/cells/ctrnn.py" ]; then
  echo "error: $src is not a jax_rtrl checkout (no jax_rtrl/models/cells/ctrnn.py); clone https://github.com/FranzKnut/jax_rtrl" >&2
  exit 2
fi
python3 -m venv "$venv"
"$venv/bin/pip" install -q --upgrade pip
"$venv/bin/pip" install -q -e "$root[sweep,bench]"
"$venv/bin/pip" install -q "jax==0.10.2" "jaxlib==0.10.2" "flax==0.12.8" "optax==0.2.8" \
  "chex==0.1.92" "ml_collections==1.1.0" "distrax==0.1.9" "tfp-nightly==0.26.0.dev20261027" \
  "jaxtyping==0.3.11" "dacite==1.9.2" "simple-parsing==0.1.9" "tqdm" "typing_extensions"
PYTHONPATH="$src" "$venv/bin/python" -c "from jax_rtrl.models.cells.ctrnn import OnlineCTRNNCell" \
  && echo "ready: $venv/bin/python benchmarks/run.py --jax-rtrl $src"
