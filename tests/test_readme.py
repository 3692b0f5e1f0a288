"""The README's learner's path: it opens the README, has 3-6 steps and a table mapping the
chapter to what teaches it here, and every file, command, notebook section and exercise it
names exists."""

from __future__ import annotations

import json
import re

import pytest
from conftest import REPO

from jaxcalc import course
from jaxcalc.cli import SUBCOMMANDS

PATH_TITLE = "## Learn it: the learner's path"
#: The chapter's own companion files: named to map them, they live with the chapter, not here.
CHAPTER_FILES = ("code/", "exercises/")
EXTENSIONS = (".py", ".md", ".png", ".ipynb", ".sh", ".json")


@pytest.fixture(scope="module")
def section() -> str:
    readme = (REPO / "README.md").read_text()
    start = readme.index(PATH_TITLE)
    return readme[start : readme.index("\n## ", start + 1)]


def table(section: str) -> list[list[str]]:
    rows = [line for line in section.splitlines() if line.startswith("| the chapter")]
    start = section.splitlines().index(rows[0])
    lines = section.splitlines()[start + 2 :]
    body = []
    for line in lines:
        if not line.startswith("|"):
            break
        body.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return body


def test_the_path_opens_the_readme_before_the_engineers_material():
    readme = (REPO / "README.md").read_text()
    sections = re.findall(r"^## .*", readme, flags=re.M)
    assert sections[0] == PATH_TITLE
    assert sections[1] == "## Quick start"


def test_three_to_six_steps(section):
    steps = re.findall(r"^(\d+)\. ", section, flags=re.M)
    assert 3 <= len(steps) <= 6
    assert steps == [str(i) for i in range(1, len(steps) + 1)]


def test_the_table_maps_every_part_of_the_chapter(section):
    rows = table(section)
    assert len(rows) >= 8 and all(len(r) == 5 for r in rows)
    files = " ".join(r[1] for r in rows)
    assert "`code/02_*.py`" in files and "`exercises/02_calculus_solutions.md`" in files
    named = " ".join(r[3] for r in rows)
    for ex in course.EXERCISES:  # every exercise is placed in the chapter
        for fn in ex.solutions:
            assert f"`{fn.__name__}`" in named, fn.__name__


def test_every_file_named_exists(section):
    tokens = re.findall(r"`([^`]+)`", section) + re.findall(r"\]\(([^)]+)\)", section)
    paths = set()
    for token in tokens:
        for word in token.split():
            word = word.rstrip(",;:")
            if word.startswith(CHAPTER_FILES) or word.startswith(("-", '"', ".[")):
                continue
            if "/" in word or word.endswith(EXTENSIONS):
                paths.add(word)
    assert len(paths) >= 25
    missing = sorted(p for p in paths if not (REPO / p).exists())
    assert not missing, f"the README's path names files that do not exist: {missing}"


def test_every_command_and_exercise_named_exists(section):
    commands = re.findall(r"`jaxcalc (\w+)", section)
    assert commands and set(commands) <= set(SUBCOMMANDS)
    names = {fn.__name__ for ex in course.EXERCISES for fn in ex.solutions}
    for cell in (r[3] for r in table(section)):
        for listed in re.findall(r"exercise (.*)$", cell):
            assert set(re.findall(r"`(\w+)`", listed)) <= names, listed


def test_every_notebook_section_named_exists(section):
    headings = []
    for nb in (REPO / "notebooks").glob("*.ipynb"):
        for cell in json.loads(nb.read_text())["cells"]:
            if cell["cell_type"] == "markdown":
                text = "".join(cell["source"])
                headings += [h for h in text.splitlines() if h.startswith("#")]
    named = [r[2] for r in table(section) if r[2] and r[2] != "each section's exercise"]
    assert len(named) >= 7
    for title in named:
        assert any(title in h for h in headings), f"no notebook section titled {title!r}"
