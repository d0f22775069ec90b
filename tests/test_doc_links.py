"""Every relative link in README.md and docs/**/*.md leads somewhere: the file (or folder) exists
inside the repository, and an anchor into a markdown page names one of its headings.

Links checked: ``[text](path)``, ``![alt](path)``, reference definitions ``[name]: path``, and
``<img src=...>`` / ``<a href=...>``; not those inside code (fenced blocks, inline code), nor
those with a scheme (``https://``, ``mailto:``). A path starting with ``/`` is from the repository
root, as GitHub reads it. Anchors follow GitHub's heading slugs: the heading's text, lowercased,
punctuation other than ``-`` and ``_`` removed, spaces turned into ``-``; a repeated slug gets
``-1``, ``-2``, ...; explicit ``id=`` / ``name=`` anchors count too.
"""

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
INLINE_CODE = re.compile(r"(`+).+?\1")
# The target of every inline link or image: what follows "](", up to an optional title and ")".
# Keyed on "](" alone, so an image inside a link's text and link text spanning lines are found.
INLINE = re.compile(r"\]\(\s*(<[^>\n]*>|[^)\s]*)(?:\s+(?:\"[^\"]*\"|'[^']*'|\([^)]*\)))?\s*\)")
REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*(<[^>\n]*>|\S+)")
HTML = re.compile(r"<(?:img|a)\b[^>]*?\b(?:src|href)\s*=\s*[\"']([^\"']*)[\"']", re.IGNORECASE)
HTML_ANCHOR = re.compile(r"\b(?:id|name)\s*=\s*[\"']([^\"']+)[\"']", re.IGNORECASE)
ATX = re.compile(r"^ {0,3}#{1,6}(?:\s+(.*?))?(?:\s+#+)?\s*$")
SETEXT = re.compile(r"^ {0,3}(?:=+|-+)\s*$")
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def prose_lines(text: str) -> list[tuple[int, str]]:
    """``(line number, line)`` outside fenced code blocks, inline code blanked out."""
    lines, fence = [], None
    for number, line in enumerate(text.splitlines(), 1):
        opened = FENCE.match(line)
        if fence is not None:
            if opened and opened.group(1)[0] == fence[0] and len(opened.group(1)) >= len(fence):
                fence = None
            continue
        if opened:
            fence = opened.group(1)
            continue
        lines.append((number, INLINE_CODE.sub(lambda m: " " * len(m.group(0)), line)))
    return lines


def links(text: str) -> list[tuple[int, str]]:
    """``(line number, target)`` of every link in a markdown page, in order."""
    found = []
    for number, line in prose_lines(text):
        targets = [m.group(1) for pattern in (INLINE, REFERENCE, HTML) for m in pattern.finditer(line)]
        found += [(number, t[1:-1] if t.startswith("<") and t.endswith(">") else t) for t in targets]
    return found


def slug(heading: str) -> str:
    """GitHub's anchor for a heading's markdown text."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link or image: its text
    text = re.sub(r"<[^>]*>", "", text)  # HTML tags
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())  # \w: letters, digits and '_', any script
    return text.replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Every anchor a markdown page defines: its headings' slugs and explicit HTML ids."""
    found: set[str] = set()
    counts: dict[str, int] = {}
    previous = ""
    for number, line in prose_lines(text):
        heading = ATX.match(line)
        title = heading.group(1) or "" if heading else None
        if heading is None and SETEXT.match(line) and previous.strip() and not ATX.match(previous):
            title = previous.strip()
        if title is not None:
            base = slug(title)
            count = counts.get(base, 0)
            counts[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")
        found.update(m.group(1) for m in HTML_ANCHOR.finditer(line))
        previous = line
    return found


def broken_links(page: Path, root: Path) -> list[str]:
    """One line per link in ``page`` that leads nowhere: ``page:line: target: why``."""
    problems = []
    name = page.relative_to(root).as_posix()
    for number, target in links(page.read_text(encoding="utf-8")):
        if not target or SCHEME.match(target):
            continue
        path, _, anchor = target.partition("#")
        path = unquote(path.split("?")[0])
        where = page if not path else (root / path.lstrip("/") if path.startswith("/") else page.parent / path)
        where = where.resolve()
        if not where.is_relative_to(root.resolve()):
            problems.append(f"{name}:{number}: {target}: leads outside the repository")
        elif not where.exists():
            problems.append(f"{name}:{number}: {target}: no such file")
        elif anchor and where.suffix == ".md" and unquote(anchor) not in anchors(where.read_text(encoding="utf-8")):
            problems.append(f"{name}:{number}: {target}: no heading #{anchor} in {where.relative_to(root.resolve())}")
    return problems


def test_pages_are_found():
    names = [p.relative_to(ROOT).as_posix() for p in PAGES]
    assert "README.md" in names and any(n.startswith("docs/") for n in names), names


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_resolve(page):
    problems = broken_links(page, ROOT)
    assert not problems, "broken links:\n" + "\n".join(problems)


def test_slugs_follow_github():
    assert slug("The game interface, and how to add a game") == "the-game-interface-and-how-to-add-a-game"
    assert slug("Playing: `selfplay play`") == "playing-selfplay-play"
    assert slug("  Speed (2-core, 10 x 10)  ") == "speed-2-core-10-x-10"
    assert slug("snake_case and [a link](x.md)") == "snake_case-and-a-link"
    assert anchors("# Top\n## Usage\n## Usage\nSetext\n---\n<a id=\"here\"></a>\n```\n# not a heading\n```\n") == {
        "top", "usage", "usage-1", "setext", "here"
    }


def test_the_checker_finds_what_is_broken(tmp_path):
    (tmp_path / "docs" / "img").mkdir(parents=True)
    (tmp_path / "docs" / "img" / "a.png").write_bytes(b"")
    (tmp_path / "docs" / "guide.md").write_text("# Guide\n## How it works\n", encoding="utf-8")
    readme = tmp_path / "README.md"
    readme.write_text(
        "[ok](docs/guide.md) [ok](docs/guide.md#how-it-works) [ok](/docs/guide.md \"title\") [ok](#intro)\n"
        "# Intro\n"
        "![ok](docs/img/a.png) <img src=\"docs/img/a.png\"> [ok](https://example.com/x.md) [ok](mailto:a@b.c)\n"
        "[![ok](docs/img/a.png)](docs/missing.md)\n"  # line 4: the outer link is broken
        "`[code](nowhere.md)`\n```\n[code](nowhere.md)\n```\n"
        "![alt](docs/img/b.png)\n"  # line 9
        "[bad anchor](docs/guide.md#how-it-fails)\n"  # line 10
        "<img width=10 src='docs/img/c.png'>\n"  # line 11
        "[out](../elsewhere.md)\n"  # line 12
        "[ref]: docs/gone.md\n",  # line 13
        encoding="utf-8",
    )
    assert broken_links(readme, tmp_path) == [
        "README.md:4: docs/missing.md: no such file",
        "README.md:9: docs/img/b.png: no such file",
        "README.md:10: docs/guide.md#how-it-fails: no heading #how-it-fails in docs/guide.md",
        "README.md:11: docs/img/c.png: no such file",
        "README.md:12: ../elsewhere.md: leads outside the repository",
        "README.md:13: docs/gone.md: no such file",
    ]
