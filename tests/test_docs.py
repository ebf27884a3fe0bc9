"""The examples in the docs run."""

import doctest
import re
from pathlib import Path

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


def test_design_page_examples_run():
    """docs/design.md's blocks (a new cell, loss, rule and task) run as written, in order."""
    text = (ROOT / "docs" / "design.md").read_text()
    namespace = {}
    for i, block in enumerate(re.findall(r"```python\n(.*?)```", text, re.S)):
        exec(compile(block, f"design.md block {i}", "exec"), namespace)
    assert namespace["res"].accuracy.shape == (50,)
