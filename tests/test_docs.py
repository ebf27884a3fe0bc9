"""The examples in the docs run."""

import doctest
import re
from pathlib import Path

import pytest

import rflo

ROOT = Path(__file__).resolve().parents[1]


def test_package_docstring_example():
    assert doctest.testmod(rflo).failed == 0


def test_readme_python_example(tmp_path, monkeypatch):
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    block = block.replace("trials=10_000", "trials=300")  # same code, shorter
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(block, "README.md", "exec"), namespace)
    assert namespace["result"].loss.shape == (300,)
    assert (tmp_path / "rflo.npz").exists()


def test_readme_own_loop_example_learns():
    """README's second block: a rule in a user's own optax loop."""
    text = (ROOT / "README.md").read_text()
    block = re.findall(r"```python\n(.*?)```", text, re.S)[1]
    namespace = {}
    exec(compile(block, "README.md block 1", "exec"), namespace)
    first, _ = namespace["step"](
        namespace["net"], namespace["x"], namespace["y"], namespace["mask"]
    )
    assert float(namespace["loss"]) < float(first) / 5


def test_design_page_examples_run():
    """docs/design.md's blocks (a new cell, loss, rule and task) run as written, in order."""
    text = (ROOT / "docs" / "design.md").read_text()
    namespace = {}
    for i, block in enumerate(re.findall(r"```python\n(.*?)```", text, re.S)):
        exec(compile(block, f"design.md block {i}", "exec"), namespace)
    assert namespace["res"].accuracy.shape == (50,)


#: blocks that run for minutes as written run shorter in the test (same code)
SHORTER = {"paper.md": [("trials=30_000", "trials=20")]}


@pytest.mark.slow
@pytest.mark.parametrize(
    "page", ["long-runs.md", "optimizers.md", "paper.md", "tasks.md", "sweeps.md", "own-model.md"]
)
def test_every_docs_example_runs_and_shows_what_it_says(page, tmp_path, monkeypatch):
    """Each page's python blocks run in order in one namespace (NeuroGym's only
    where it is installed), in a fresh folder holding examples/; pages with a
    claim are checked on it."""
    import importlib.util
    import shutil

    import numpy as np

    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    monkeypatch.chdir(tmp_path)

    text = (ROOT / "docs" / page).read_text()
    namespace = {}
    for i, block in enumerate(re.findall(r"```python\n(.*?)```", text, re.S)):
        if "neurogym" in block and importlib.util.find_spec("neurogym") is None:
            continue
        for old, new in SHORTER.get(page, []):
            block = block.replace(old, new)
        exec(compile(block, f"{page} block {i}", "exec"), namespace)
    if page == "sweeps.md":  # 80 networks x 2,000 trials, a row per 100 trials
        assert namespace["table"].num_rows == 80 * 20
    if page == "tasks.md":
        res = namespace["res"]
        assert res.diverged is None
        assert np.nanmean(res.accuracy[-50:]) > 0.9 > 0.6 > np.nanmean(res.accuracy[:50])
    if page == "long-runs.md":
        import rflo

        whole = rflo.train(namespace["net"], namespace["task"], "rflo", trials=1000)
        np.testing.assert_array_equal(namespace["more"].network.w_rec, whole.network.w_rec)


@pytest.mark.slow
def test_readme_command_lines_run(tmp_path):
    """Every `rflo ...` line of README's command blocks runs as written (in a
    fresh folder; `runs/<folder>` is the run the line before made)."""
    import shlex
    import shutil

    from test_cli import run

    text = (ROOT / "README.md").read_text()
    lines = [
        line.split("#")[0].strip()
        for block in re.findall(r"```bash\n(.*?)```", text, re.S)
        for line in block.splitlines()
        if line.startswith("rflo ")
    ]
    assert len(lines) >= 10
    runs = tmp_path / "runs"
    shutil.copytree(ROOT / "examples", tmp_path / "examples")  # the sweep specs
    for line in lines:
        made = sorted(runs.iterdir(), key=lambda p: p.stat().st_mtime) if runs.exists() else []
        if "--resume" in line:  # the folder of the last train run
            made = [p for p in made if p.name.endswith("-train")]
        made = [p for p in made if p.name != "laptop"]  # a sweep's folder, not a run
        if "<folder>" in line:
            line = line.replace("runs/<folder>", str(made[-1]))
        proc = run(*shlex.split(line)[1:], cwd=tmp_path)
        assert proc.returncode == 0, (line, proc.stderr[-2000:])
