"""Every docs/ page and examples/ script runs, so they never rot.

Docs: each page's ```python blocks run in order in one namespace; a ``print(...)  # text``
line must print exactly ``text`` (the comment is the documented output).
"""

from __future__ import annotations

import contextlib
import io
import re
import runpy
from pathlib import Path

import matplotlib
import pytest

ROOT = Path(__file__).resolve().parents[1]
# api.md holds only mkdocstrings directives: tests/test_docs_build.py builds it
DOCS = sorted(p for p in (ROOT / "docs").glob("*.md") if p.name != "api.md") + [ROOT / "README.md"]
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))
BLOCK = re.compile(r"```python\n(.*?)```", re.S)
PRINTED = re.compile(r"^print\(.*\)\s+#\s*(.+?)\s*$", re.M)


def test_there_is_something_to_run():
    assert len(DOCS) >= 2 and len(EXAMPLES) >= 2


@pytest.mark.parametrize("page", DOCS, ids=lambda p: p.name)
def test_docs_page_runs_and_prints_what_it_says(page, monkeypatch, tmp_path):
    matplotlib.use("Agg")
    monkeypatch.chdir(tmp_path)
    blocks = BLOCK.findall(page.read_text())
    assert blocks, f"{page.name} has no python block"
    namespace: dict = {"__name__": "__docs__"}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        for code in blocks:
            exec(compile(code, str(page), "exec"), namespace)
    printed = out.getvalue().splitlines()
    for code in blocks:
        for expected in PRINTED.findall(code):
            assert expected in printed, f"{page.name}: expected a line {expected!r}; got {printed}"


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(script, monkeypatch, tmp_path, capsys):
    matplotlib.use("Agg")
    monkeypatch.chdir(tmp_path)
    runpy.run_path(str(script), run_name="__main__")
    assert capsys.readouterr().out.strip(), f"{script.name} printed nothing"
