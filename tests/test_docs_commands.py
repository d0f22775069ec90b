"""Every ``selfplay ...`` command in README.md, docs/*.md and docs/results/*.md parses through the real command line
(:func:`selfplay.tools.cli.parse_only`: the chosen command's own parser, nothing run), so the docs
cannot drift from the flags: a renamed flag, a removed choice or a new required argument fails
here, not in a reader's terminal with exit code 2.

What counts as a command: in a fenced code block, every shell command that is ``selfplay`` (after
``$``, ``VAR=value`` prefixes, a pipe, ``&&`` or ``;``; lines ending in ``\\`` join the next); in
inline code, the same; and a command quoted as an argument (``--reproduce "selfplay train ..."``).
Inline code may *name* a command without its arguments (`selfplay arena`, `selfplay league exploit
--init`), and a quoted command is what a card records (`pretrained make`'s own, without its
``--reproduce``), so there a missing argument is allowed; an unknown flag, command or choice never
is. Placeholders need no substitution, since a positional takes any word
(``DIR``, ``RUN``, ``runs/connect4-...``); the few other conventions are read as a reader reads
them: ``[--flag VALUE]`` is an optional part (checked without its brackets), ``...`` alone elides
arguments (dropped), and ``selfplay analyze: ready`` (a word ending in ``:``) is a message the
program prints, not a command.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

from selfplay.tools.cli import UsageError, build_parser, parse_only

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "docs" / "results").glob("*.md"))]
FENCE = re.compile(r"^\s*(```|~~~)")
INLINE_CODE = re.compile(r"(`+)(.+?)\1")
SEPARATORS = {"|", "||", "&&", ";", "&", "(", ")"}
ENV_PREFIX = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
#: what argparse says when a command line stops short: allowed where a command may be partial
INCOMPLETE = ("the following arguments are required", "expected one argument", "expected at least one argument")


@dataclass(frozen=True)
class DocCommand:
    where: str  # "docs/league.md:160"
    argv: tuple[str, ...]  # the words after `selfplay`
    partial: bool  # may stop short of its required arguments: named in inline code, or quoted

    def __str__(self) -> str:
        return f"{self.where}: selfplay {shlex.join(self.argv)}"


def shell_commands(text: str, partial: bool = False) -> list[tuple[tuple[str, ...], bool]]:
    """The ``selfplay`` commands in one line of shell: (the words after ``selfplay``, partial?),
    ``partial`` for those in ``text``, and True for those quoted as their arguments."""
    lexer = shlex.shlex(text, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True  # keep paths, KEY=VALUE and --flags whole
    try:
        words = list(lexer)  # comments (#) dropped
    except ValueError:  # an unclosed quote: prose, not shell
        return []
    found, command = [], []
    for word in [*words, ";"]:
        if word not in SEPARATORS:
            command.append(word)
            continue
        while command and (command[0] == "$" or ENV_PREFIX.match(command[0])):
            command = command[1:]
        if command[:1] == ["selfplay"]:
            argv = [w.strip("[]") for w in command[1:] if w != "..."]  # [--opt X] optional, ... elided
            argv = [w for w in argv if w]
            if argv and not argv[0].endswith(":"):  # `selfplay analyze: ready`: output, not a command
                found.append((tuple(argv), partial))
                for word in argv:  # a command quoted as an argument: --reproduce "selfplay train ..."
                    found.extend(shell_commands(word, partial=True) if word.startswith("selfplay ") else [])
        command = []
    return found


def doc_commands(path: Path, text: str | None = None) -> list[DocCommand]:
    """The ``selfplay`` commands in a Markdown file: in code blocks (lines ending in ``\\`` joined)
    and in inline code (a span may run over a line break, as Markdown allows in a paragraph)."""
    name = path.relative_to(ROOT).as_posix() if path.is_absolute() else str(path)
    lines = (path.read_text() if text is None else text).splitlines()
    found: list[DocCommand] = []
    paragraph: list[tuple[int, str]] = []

    def end_paragraph() -> None:
        if paragraph:
            start, joined = paragraph[0][0], " ".join(line for _, line in paragraph)
            for span in INLINE_CODE.finditer(joined):
                found.extend(DocCommand(f"{name}:{start}", *c) for c in shell_commands(span.group(2), partial=True))
            paragraph.clear()

    in_block, i = False, 0
    while i < len(lines):
        line, number = lines[i], i + 1
        if FENCE.match(line):
            end_paragraph()
            in_block = not in_block
        elif in_block:
            while line.rstrip().endswith("\\") and i + 1 < len(lines):
                i += 1
                line = line.rstrip()[:-1] + " " + lines[i].strip()
            found.extend(DocCommand(f"{name}:{number}", *c) for c in shell_commands(line))
        elif line.strip():
            paragraph.append((number, line.strip()))
        else:
            end_paragraph()
        i += 1
    end_paragraph()
    return found


COMMANDS = [command for path in DOCS for command in doc_commands(path)]


def refusal(argv: tuple[str, ...], partial: bool) -> str | None:
    """What the real command line says against ``argv`` before running anything; None when it
    parses, or when a ``partial`` command (`selfplay arena`, `selfplay league exploit --init`)
    stops short of the rest of the line, every flag it names being one the command has."""
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # --help prints, then exits 0
            parse_only(list(argv))
    except UsageError as e:
        if not (partial and any(words in str(e) for words in INCOMPLETE)):
            return str(e)
        # argparse reports the missing arguments before unknown ones: look the flags up
        known = command_parser(argv)._option_string_actions
        unknown = [w for w in argv if re.match(r"--?[A-Za-z]", w) and w.split("=")[0] not in known]
        return f"{e}; and no such flag: {', '.join(unknown)}" if unknown else None
    except SystemExit as e:
        return None if e.code == 0 else f"exit {e.code}"
    return None


def command_parser(argv: tuple[str, ...]) -> argparse.ArgumentParser:
    """The parser of the (sub)command that ``argv`` names: `pretrained make`'s, `bench curve`'s."""
    parser = build_parser(list(argv))
    for word in argv:
        subcommands = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if subcommands and word in subcommands[0].choices:
            parser = subcommands[0].choices[word]
    return parser


@pytest.mark.parametrize("command", COMMANDS, ids=str)
def test_a_documented_command_parses(command):
    error = refusal(command.argv, command.partial)
    assert error is None, f"{command}\n  {error}"


def test_the_docs_commands_are_found():
    """The extraction itself: the commands this file is meant to check are among those found."""
    found = {(c.where.split(":")[0], c.argv[:2]) for c in COMMANDS}
    assert len(COMMANDS) > 150
    assert ("docs/training.md", ("pretrained", "make")) in found  # a continued line in a code block
    assert ("docs/results/2026-12-06-arena-brain-robustness.md", ("pretrained", "make")) in found  # results too
    assert ("docs/league.md", ("league", "exploit")) in found
    assert ("docs/plugins.md", ("games",)) in found  # `$ selfplay games`


def test_the_extraction_reads_markdown_as_a_reader_does():
    text = "\n".join([
        "Run `selfplay train connect4 --preset tiny` or `selfplay`; see `selfplay",
        "arena A B --games 10`, and `selfplay analyze: ready` is printed.",
        "",
        "```sh",
        "SDL_VIDEODRIVER=dummy selfplay play connect4 \\",
        "    --overlay   # a comment",
        "echo '{}' | selfplay analyze --checkpoint runs/c4 && selfplay bench ... --json",
        "$ selfplay games",
        "selfplay league ladder DIR [--games 40]",
        'selfplay pretrained make c4 runs/c4 --reproduce "selfplay train connect4 --minutes 5"',
        "```",
        "`make train` then `pip install x && selfplay games --json`",
    ])
    commands = doc_commands(Path("x.md"), text)
    assert [(c.where, c.partial, c.argv) for c in commands] == [
        ("x.md:1", True, ("train", "connect4", "--preset", "tiny")),
        ("x.md:1", True, ("arena", "A", "B", "--games", "10")),
        ("x.md:5", False, ("play", "connect4", "--overlay")),
        ("x.md:7", False, ("analyze", "--checkpoint", "runs/c4")),
        ("x.md:7", False, ("bench", "--json")),
        ("x.md:8", False, ("games",)),
        ("x.md:9", False, ("league", "ladder", "DIR", "--games", "40")),
        ("x.md:10", False, ("pretrained", "make", "c4", "runs/c4", "--reproduce", "selfplay train connect4 --minutes 5")),
        ("x.md:10", True, ("train", "connect4", "--minutes", "5")),
        ("x.md:12", True, ("games", "--json")),
    ]


@pytest.mark.parametrize(
    "argv, partial, passes",
    [
        (("pretrained", "make", "connect4", "runs/c4", "--reproduce", "selfplay train connect4"), False, True),
        (("pretrained", "make", "connect4", "runs/c4"), False, False),  # --reproduce is required
        (("pretrained", "make", "connect4", "runs/c4", "--reproduce", "x", "--root-policy", "gumbel"), False, False),
        (("pretrained", "make"), True, True),  # inline code naming the command
        (("pretrained", "make", "--root-policy", "gumbel"), True, False),  # ... but never an unknown flag
        (("league", "exploit", "mcts:200", "--init", "runs/c4", "--minutes", "5"), False, True),
        (("league", "exploit", "--init"), True, True),
        (("train", "connect4", "--preset", "huge"), True, False),
        (("bench", "curve"), True, True),
        (("bench", "curve"), False, False),
        (("train", "--help"), False, True),
    ],
)
def test_the_check_fails_a_command_the_parser_refuses(argv, partial, passes):
    """The module commands' own parsers (pretrained make, league exploit, bench curve) are the
    ones checked: the two documented `pretrained make` lines that exited 2 would fail here."""
    error = refusal(argv, partial)
    assert (error is None) == passes, error
