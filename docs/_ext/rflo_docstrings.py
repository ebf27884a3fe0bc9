"""Griffe extension for the API reference: reads rflo's docstrings as written.

rflo's docstrings are numpy-style sections whose entries read ``name :
description`` (not numpy's ``name : type``), field lists of the same form
outside sections, reST roles (``:class:`~rflo.tasks.Task```), ``::`` literal
blocks, simple tables and doctests.  mkdocstrings renders Markdown, so before
they are parsed this turns

* a section entry ``name : text`` into ``name`` with ``text`` as its
  description, and a paragraph after a section's entries into a Notes section;
* a field ``name : text`` outside sections into a list item;
* a role into inline code, ``text::`` into ``text:``;
* a simple table and a doctest into fenced blocks;

and gives each name of a module's ``__all__`` that has no docstring a line
saying what it is, so that the reference lists it (``show_if_no_docstring``
stays off, so a class's fields are not listed twice).  The source is not
changed.
"""

from __future__ import annotations

import re

import griffe

ENTRY_SECTIONS = {
    "parameters",
    "other parameters",
    "attributes",
    "class attributes",
    "returns",
    "yields",
    "raises",
}
ENTRY = re.compile(r"^([A-Za-z_*][\w*]*(?:\s*,\s*[A-Za-z_*][\w*]*)*)\s+:\s+(.*)$")
ROLE = re.compile(r":(?:py:)?(?:func|class|mod|meth|attr|data|obj|exc|const):`(~?)([^`]+)`")
TABLE_BORDER = re.compile(r"^=+(\s+=+)+\s*$")


def _role(match):
    target = match.group(2)
    return f"``{target.rsplit('.', 1)[-1] if match.group(1) else target}``"


def _is_header(lines, i):
    return (
        i + 1 < len(lines)
        and lines[i].strip()
        and not lines[i].startswith(" ")
        and re.match(r"^-{3,}\s*$", lines[i + 1]) is not None
    )


def convert(text: str) -> str:
    """rflo's docstring text -> the numpy/Markdown text mkdocstrings renders."""
    lines = ROLE.sub(_role, text).splitlines()
    out = []
    section = None  # the current numpy section's name, lower case
    after_blank = False
    i = 0
    while i < len(lines):
        line = lines[i]
        if _is_header(lines, i):
            section = line.strip().lower()
            out += [line, lines[i + 1]]
            i += 2
            after_blank = False
            continue
        if TABLE_BORDER.match(line):  # a simple table: to its last border line
            end = i
            for j in range(i + 1, len(lines)):
                if TABLE_BORDER.match(lines[j]):
                    end = j
                    if j + 1 >= len(lines) or not lines[j + 1].strip():
                        break
            out += ["```text", *lines[i : end + 1], "```"]
            i = end + 1
            continue
        if line.startswith(">>> "):  # a doctest: to the next blank line
            end = i
            while end + 1 < len(lines) and lines[end + 1].strip():
                end += 1
            out += ["```pycon", *lines[i : end + 1], "```"]
            i = end + 1
            continue
        if line.rstrip().endswith("::"):  # reST literal block
            stripped = line.rstrip()[:-2].rstrip()
            line = f"{stripped}:" if stripped else ""
        entry = ENTRY.match(line)
        if section in ENTRY_SECTIONS:
            if entry:
                out += [entry.group(1), "    " + entry.group(2)]
            elif after_blank and line.strip() and not line.startswith(" "):
                section = "notes"  # a paragraph after the entries
                out += ["Notes", "-----", line]
            else:
                out.append(line)
        elif entry and section is None:
            out.append(f"- ``{entry.group(1)}``: {entry.group(2)}")
        else:
            out.append(line)
        after_blank = not line.strip()
        i += 1
    return "\n".join(out)


class RfloDocstrings(griffe.Extension):
    """Rewrites docstrings as :func:`convert` says, once the package is loaded."""

    def on_package(self, *, pkg, **kwargs):
        seen = set()

        def visit(obj):
            if id(obj) in seen or obj.is_alias:
                return
            seen.add(id(obj))
            if obj.docstring is not None:
                obj.docstring.value = convert(obj.docstring.value)
            if obj.is_module:
                for name in map(str, obj.exports or ()):
                    member = obj.members.get(name)
                    if member is None or member.docstring is not None:
                        continue
                    target = member.final_target if member.is_alias else member
                    if target.docstring is None:
                        target.docstring = griffe.Docstring(
                            f"Exported by ``{obj.path}`` without a docstring of its own.",
                            parent=target,
                        )
            for member in obj.members.values():
                visit(member)

        visit(pkg)
