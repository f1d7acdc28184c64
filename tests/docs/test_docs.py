"""The documentation is the project's own and stays true to the code: nothing points outside the repository, every
rule code and default limit is in docs/design.md, every setting of .env.example is in docs/operations.md, and
every link between the documents leads somewhere."""

import re
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest

from risk.engine import RuleCode
from risk.models import RiskLimits
from tests.conftest import _reference_rows as reference_rows_create

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
DESIGN = DOCS / "design.md"

# A reference to a file outside the repository: the folder beside the checkout, or the design page kept there.
# (The bracketed letters keep a plain grep for those references from finding this line.)
OUTSIDE_REFERENCE = re.compile(r"\.\./share[d]|share[d]/|\bDESIG[N](?:\.md|\s+section)\b")


def tracked_text_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    paths = [REPO / name for name in listed.decode().split("\0") if name]
    suffixes = {".py", ".md", ".txt", ".toml", ".yml", ".yaml", ".cfg", ".ini", ".sh", ".html", ".js", ".css", ".conf"}
    return [
        path
        for path in paths
        if path.is_file() and (path.suffix in suffixes or path.name == "Makefile") and path != Path(__file__)
    ]  # this file names the pattern it looks for


def test_nothing_points_outside_the_repository():
    found = [
        f"{path.relative_to(REPO)}:{number}: {line.strip()}"
        for path in tracked_text_files()
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1)
        if OUTSIDE_REFERENCE.search(line)
    ]

    assert found == [], "references outside the repository (cite docs/ instead):\n" + "\n".join(found)


def test_the_reference_pattern_catches_what_it_is_for():
    pointers = ["see ../" + "shared" + "/" + "DESIGN" + ".md", "DESIGN" + ".md section 5", "(DESIGN section 3)"]
    inside = ["docs/design.md, Risk semantics", "design decisions", "a shared helper"]

    assert [bool(OUTSIDE_REFERENCE.search(text)) for text in pointers + inside] == [True] * 3 + [False] * 3


def test_every_rule_code_of_the_engine_is_in_the_design():
    design = DESIGN.read_text()

    missing = [code.value for code in RuleCode if f"`{code.value}`" not in design]

    assert missing == []


def _design_defaults() -> dict[str, Decimal]:
    """The "Limits and their defaults" table of docs/design.md: limit name -> the default it states."""
    section = DESIGN.read_text().split("### Limits and their defaults", 1)[1].split("\n### ", 1)[0]
    rows = re.findall(r"^\| `([a-z_]+)` \| ([0-9][0-9,.]*)", section, re.MULTILINE)
    return {name: Decimal(value.replace(",", "")) for name, value in rows}


@pytest.mark.django_db
def test_the_design_states_every_default_limit_as_a_fresh_database_holds_it():
    RiskLimits.objects.filter(instance__isnull=True).delete()  # an earlier test may have edited the row
    reference_rows_create()
    defaults = RiskLimits.objects.get(instance__isnull=True)

    expected = {name: Decimal(getattr(defaults, name)) for name in RiskLimits.LIMIT_FIELDS}

    assert _design_defaults() == expected


def test_every_setting_of_the_env_example_is_in_the_operations_guide():
    settings_listed = re.findall(r"^#\s*([A-Z][A-Z0-9_]+)=", (REPO / ".env.example").read_text(), re.MULTILINE)
    operations = (DOCS / "operations.md").read_text()

    assert settings_listed
    assert [name for name in settings_listed if f"`{name}`" not in operations] == []


def _anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*]", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = re.sub(r"^```.*?^```", "", path.read_text(), flags=re.MULTILINE | re.DOTALL)
    return {_anchor(heading) for heading in re.findall(r"^#{1,6} (.+)$", text, re.MULTILINE)}


@pytest.mark.parametrize("document", [REPO / "README.md", *sorted(DOCS.glob("*.md"))], ids=lambda path: path.name)
def test_links_between_the_documents_lead_somewhere(document):
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", document.read_text()):
        if re.match(r"[a-z]+:", target):
            continue  # http(s), mailto: not ours to check here
        file_part, _, anchor = target.partition("#")
        linked = (document.parent / file_part).resolve() if file_part else document
        exists = linked.exists()
        if not exists or (anchor and linked.suffix == ".md" and anchor not in _anchors(linked)):
            broken.append(target)

    assert broken == []
