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
