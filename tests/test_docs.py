"""The docs speak of the project only, and the five-minute walkthrough that opens them works as written."""
from __future__ import annotations

import re
import shlex

from tests.conftest import REPO, run_cli

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]  # docs/wip holds unmerged work, not docs


def test_docs_cite_no_issue_numbers_or_outside_documents() -> None:
    found = [(p.name, m.group(0)) for p in DOCS
             for m in re.finditer(r"\b[Ii]ssues? #?\d+|\bDESIGN\b", p.read_text(encoding="utf-8"))]
    assert found == []


def test_readme_opens_the_docs_with_the_walkthrough() -> None:
    assert "(docs/README.md)" in (REPO / "README.md").read_text(encoding="utf-8")
    assert (REPO / "docs" / "README.md").read_text(encoding="utf-8").split("\n## ")[1].startswith(
        "Your own model in five minutes")


def test_five_minute_walkthrough_runs_as_written(tmp_path) -> None:
    text = (REPO / "docs" / "README.md").read_text(encoding="utf-8")
    (code,) = re.findall(r"```python\n# mymodels.py\n(.*?)```", text, re.S)
    (tmp_path / "mymodels.py").write_text(code)
    (command,) = [line for line in text.splitlines() if line.startswith("mevreport report mymodels:build")]
    r = run_cli(*shlex.split(command)[1:], cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert {p.name for p in tmp_path.iterdir()} >= {"TinyNet.html", "TinyNet.json"}
    assert "wrote TinyNet.html" in r.stderr
