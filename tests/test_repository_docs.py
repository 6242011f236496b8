"""The repository explains itself: it cites only its own files, and the sections it cites exist."""

from __future__ import annotations

import re
import subprocess

from support.databases import PROJECT_ROOT

SECTION_CITATION = re.compile(r"docs/design\.md[`,)]* §(\d+)(?:[\u2013-]§?(\d+))?")
# written in two parts, so this file does not name them itself
OUTSIDE = ("../" + "shared", "DESIGN" + ".md")
LINK = re.compile(r"\]\(([^)#:]+)(?:#[^)]*)?\)")


def _tracked_text_files() -> dict[str, str]:
    names = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    files = {}
    for name in names:
        path = PROJECT_ROOT / name
        if path.is_file() and path.suffix not in {".png", ".json", ".csv", ".lock"}:
            files[name] = path.read_text(errors="replace")
    return files


def test_nothing_points_outside_the_repository():
    offenders = [
        f"{name}:{number}: {line.strip()}"
        for name, text in _tracked_text_files().items()
        for number, line in enumerate(text.splitlines(), 1)
        if any(outside in line for outside in OUTSIDE)
    ]
    assert offenders == []


def test_every_cited_design_section_exists():
    design = (PROJECT_ROOT / "docs" / "design.md").read_text()
    sections = {int(n) for n in re.findall(r"^## §(\d+) ", design, flags=re.MULTILINE)}
    cited = {
        (name, int(n))
        for name, text in _tracked_text_files().items()
        for match in SECTION_CITATION.finditer(text)
        for n in range(int(match[1]), int(match[2] or match[1]) + 1)
    }
    assert cited, "no file cites docs/design.md by section: the pattern is wrong"
    assert sorted(c for c in cited if c[1] not in sections) == []


def test_links_of_the_top_level_documents_resolve():
    for document in ("README.md", "CONTRIBUTING.md", "CHANGELOG.md", "docs/design.md"):
        text = (PROJECT_ROOT / document).read_text()
        base = (PROJECT_ROOT / document).parent
        missing = [link for link in LINK.findall(text) if not (base / link).exists()]
        assert missing == [], f"{document} links to {missing}"
    readme = (PROJECT_ROOT / "README.md").read_text()
    for document in ("docs/design.md", "docs/specification.md", "CONTRIBUTING.md", "CHANGELOG.md"):
        assert f"]({document})" in readme
