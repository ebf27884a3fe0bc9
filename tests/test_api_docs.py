"""The API reference (docs/api/*.md, rendered by mkdocstrings) covers the public API.

A text check of the pages' ``::: path`` directives and mkdocs.yml, so it is fast
and needs neither mkdocs nor a built site: every name of ``rflo.__all__`` has
its own directive on docs/api/rflo.md, and each public submodule's page either
lists its ``__all__`` as members or documents the whole module under a
configuration that renders exactly ``__all__`` (``filters: public``) including
the names without a docstring (``show_if_no_docstring: true``, or the griffe
extension docs/_ext/rflo_docstrings.py, which gives each of them a line).
"""

import importlib
import re
from pathlib import Path

import pytest

import rflo

ROOT = Path(__file__).resolve().parents[1]
API = ROOT / "docs" / "api"

#: public modules and their reference pages
MODULE_PAGES = {
    "rflo.cells": "cells.md",
    "rflo.rules": "rules.md",
    "rflo.tasks": "tasks.md",
    "rflo.losses": "losses.md",
    "rflo.ensemble": "ensemble.md",
    "rflo.sweep": "sweep.md",
}


def directives(text):
    """``{path: members or None}`` of a page's ``::: path`` directives (members:
    the names listed under its ``options: members:``, None where not listed)."""
    found = {}
    lines = text.splitlines()
    for i, line in enumerate(lines):
        match = re.match(r":::\s+(\S+)\s*$", line)
        if not match:
            continue
        members = None
        j = i + 1
        while j < len(lines) and (lines[j].startswith("    ") or not lines[j].strip()):
            if re.match(r"\s+members:\s*$", lines[j]):
                members = []
                j += 1
                while j < len(lines) and re.match(r"\s+-\s+\S", lines[j]):
                    members.append(lines[j].split("-", 1)[1].strip())
                    j += 1
                continue
            if re.match(r"\s+members:\s*\[", lines[j]):
                members = [
                    m.strip().strip("'\"")
                    for m in lines[j].split("[", 1)[1].split("]")[0].split(",")
                    if m.strip()
                ]
            if lines[j].strip() and not lines[j].startswith("    "):
                break
            j += 1
        found[match.group(1)] = members
    return found


def undocumented(names, page_text, module="rflo"):
    """Names with neither a directive of their own (``::: module.name`` or
    ``::: module.submodule.name``) nor a place in the members of ``::: module``."""
    documented = set()
    for path, members in directives(page_text).items():
        if path == module:
            documented.update(members or ())
        elif path.startswith(module + "."):
            documented.add(path.rsplit(".", 1)[1])
    return [name for name in names if name not in documented]


def handler_options():
    """The python handler's options in mkdocs.yml, as text lines (mkdocs.yml
    holds an ``!ENV`` tag, so it is read as text, not with a YAML loader)."""
    return (ROOT / "mkdocs.yml").read_text()


def test_every_name_of_rflo_all_has_a_directive():
    missing = undocumented(rflo.__all__, (API / "rflo.md").read_text())
    assert not missing, f"add these to docs/api/rflo.md (a '::: rflo.NAME' each): {missing}"


def test_a_new_name_in_rflo_all_would_fail_the_check():
    assert undocumented([*rflo.__all__, "brand_new_function"], (API / "rflo.md").read_text()) == [
        "brand_new_function"
    ]


def test_rflo_page_directives_name_real_objects():
    """Each ``::: rflo.X[.Y]`` resolves (a typo would be a strict-build error,
    found here without mkdocs)."""
    for path in directives((API / "rflo.md").read_text()):
        module, _, name = path.rpartition(".")
        assert hasattr(importlib.import_module(module), name), path


@pytest.mark.parametrize("module", sorted(MODULE_PAGES))
def test_each_public_module_page_covers_its_all(module):
    page = API / MODULE_PAGES[module]
    found = directives(page.read_text())
    assert module in found, f"{page.name} has no '::: {module}'"
    names = importlib.import_module(module).__all__
    members = found[module]
    if members is not None:  # an explicit list: it must hold every public name
        missing = [name for name in names if name not in members]
        assert not missing, f"add to the members of '::: {module}' in {page.name}: {missing}"
    else:  # the whole module: mkdocstrings must render exactly __all__, docstring or not
        config = handler_options()
        assert re.search(r"^\s+filters:\s*(public|\[\s*[\"']?public)", config, re.M), (
            "mkdocs.yml: '::: module' pages need filters: public (render __all__)"
        )
        assert re.search(r"^\s+show_if_no_docstring:\s*true", config, re.M) or re.search(
            r"^\s+- docs/_ext/rflo_docstrings\.py", config, re.M
        ), (
            "mkdocs.yml: '::: module' pages need show_if_no_docstring: true or the "
            "docs/_ext/rflo_docstrings.py extension (names such as rflo.cells.LEAKY_TANH "
            "have no docstring, and mkdocstrings skips those otherwise)"
        )


def test_griffe_extensions_named_in_mkdocs_yml_exist():
    for path in re.findall(r"^\s+- (docs/\S+\.py)(?::\w+)?\s*$", handler_options(), re.M):
        assert (ROOT / path).is_file(), path


def test_every_page_and_tutorial_is_in_the_nav():
    """The strict build refuses a page the nav leaves out; this says so without mkdocs."""
    config = (ROOT / "mkdocs.yml").read_text()
    docs = ROOT / "docs"
    pages = [
        p.relative_to(docs).as_posix()
        for p in sorted(docs.rglob("*"))
        if p.suffix in (".md", ".ipynb")
        and "_ext" not in p.parts
        and ".ipynb_checkpoints" not in p.parts
    ]
    assert {"api/rflo.md", "tutorials/paper_experiment.ipynb", "rules/rflo.md"} <= set(pages)
    missing = [
        page for page in pages if not re.search(rf"[\s:]{re.escape(page)}\s*$", config, re.M)
    ]
    assert not missing, f"add to mkdocs.yml's nav: {missing}"
