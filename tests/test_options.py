"""Game options from any source (a command line's ``-o KEY=VALUE``, a JSON query, Python):
``games.make`` gives a Game or one clear GameError line, never another exception, and every
command turns a bad option into one line on stderr and exit code 2.

The properties are fuzzed with hypothesis: any text, any JSON-like value, huge and non-finite
numbers, lone surrogates.
"""

from __future__ import annotations

import math
import re
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import games
from games.core import integer_option, short_repr
from selfplay.tools.cli import main

#: Text with anything in it: lone surrogates (what undecodable argv bytes become), controls.
ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=12)
#: Numbers past int64 and past Python's 4300-digit int-to-text limit (built lazily: hypothesis
#: prints its strategies, and such an int cannot be printed).
HUGE = st.sampled_from([2**63, -(2**63) - 1, 1e300, -1e308, 1e-300]) | st.sampled_from([400, 4300, 5000]).flatmap(
    lambda digits: st.sampled_from([1, -1]).map(lambda sign: sign * 10**digits)
)
NUMBERS = st.integers() | st.floats() | HUGE | st.sampled_from([math.inf, -math.inf, math.nan, 8.0, 7.9, -0.0])
SCALARS = st.none() | st.booleans() | NUMBERS | ANY_TEXT | st.sampled_from(["8", " 8 ", "+8", "8.0", "1e999", "inf", "nan", "", "FAF", "open"])
JSONISH = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(ANY_TEXT, inner, max_size=3), max_leaves=8)
NAMES = st.sampled_from(games.list_games())
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _option_keys(name: str) -> st.SearchStrategy[str]:
    return st.sampled_from(list(games.game_info(name).options) or ["width"]) | ANY_TEXT


@st.composite
def _name_and_options(draw) -> tuple[str, dict]:
    name = draw(NAMES)
    return name, draw(st.dictionaries(_option_keys(name), JSONISH, max_size=3))


def _check_made(name: str, game: games.Game) -> None:
    """A game that was made has every option, each of its default's type and allowed."""
    info = games.game_info(name)
    assert game.name == name and set(game.options) == set(info.options)
    for key, opt in info.options.items():
        value = game.options[key]
        assert type(value) is type(opt.default), (key, value)
        assert opt.choices is None or value in opt.choices


def _one_line(error: Exception) -> str:
    message = str(error)
    assert message and "\n" not in message and len(message) < 300, message
    return message


@FAST
@given(_name_and_options())
def test_make_gives_a_game_or_a_game_error(case):
    name, options = case
    try:
        game = games.make(name, **options)
    except games.GameError as e:
        _one_line(e)
    else:
        _check_made(name, game)


@FAST
@given(JSONISH)
def test_make_with_any_game_name(name):
    try:
        game = games.make(name)
    except games.GameError as e:
        message = _one_line(e)  # a name with ':' names an external game (MODULE:FACTORY), refused as one
        assert "unknown game" in message or (":" in str(name) and "external game" in message), message
    else:
        _check_made(name, game)


@FAST
@given(st.sampled_from([("connect4", "width"), ("connect4", "height"), ("othello", "size"),
                        ("gomoku", "size"), ("arena", "turn_limit")]), NUMBERS | SCALARS)
def test_an_integer_option_takes_exactly_the_integral_values(case, value):
    """Accepted iff the value is an integer, a finite integral float or a decimal integer's
    text (not a bool, 7.9, inf, nan or "8.0"), and the game takes that integer."""
    name, key = case
    if isinstance(value, bool):
        integral = None
    elif isinstance(value, int):
        integral = value
    elif isinstance(value, float):
        integral = int(value) if math.isfinite(value) and value.is_integer() else None
    elif isinstance(value, str) and re.fullmatch(r"[+-]?[0-9]+", value.strip()):  # ASCII digits
        integral = int(value)
    else:
        integral = None
    try:
        game = games.make(name, **{key: value})
    except games.GameError as e:
        message = _one_line(e)
        assert key in message
        if integral is None:
            assert "takes an integer" in message
        else:  # a real integer the game refuses: its range, not its type
            with pytest.raises(games.GameError):
                games.make(name, **{key: integral})
    else:
        assert integral is not None and game.options[key] == integral
        _check_made(name, game)


@pytest.mark.parametrize(
    "name, options, fragment",
    [
        ("connect4", {"width": 1e999}, "option 'width' of connect4 takes an integer, got inf"),
        ("connect4", {"width": float("nan")}, "takes an integer, got nan"),
        ("connect4", {"width": 7.9}, "takes an integer, got 7.9"),
        ("connect4", {"height": True}, "takes an integer, got True"),
        ("connect4", {"width": "8.0"}, "takes an integer, got '8.0'"),
        ("connect4", {"width": "٨"}, "takes an integer"),  # int() would read Arabic-Indic digits
        ("connect4", {"width": 10**5000}, "width=<integer of ~5001 digits> of connect4 is out of range"),
        ("arena", {"turn_limit": 1e999}, "option 'turn_limit' of arena takes an integer, got inf"),
        ("arena", {"turn_limit": -1}, "turn_limit -1 is out of 1..10000"),
        ("arena", {"turn_limit": 10**30}, "is out of 1..10000"),
        ("arena", {"lineup": 3}, "option 'lineup' of arena takes text, got 3"),
        ("arena", {"lineup": ["F", "A"]}, "takes text, got ['F', 'A']"),
        ("arena", {"map": {"rows": 3}}, "option 'map' of arena takes text"),
        ("arena", {"lineup": "\ufb00"}, "lineup 'ﬀ' must be 1..4 kind letters"),  # upper() is "FF"
        ("arena", {"lineup": "ZZZ"}, "lineup 'ZZZ' must be"),
        ("arena", {"lineup": "F" * 10_000}, "lineup 'FFFFF"),
        (["chess"], {}, "unknown game ['chess']"),
    ],
)
def test_bad_option_values_name_the_option(name, options, fragment):
    with pytest.raises(games.GameError) as caught:
        games.make(name, **options)
    assert fragment in _one_line(caught.value)


def test_integral_values_are_accepted_in_every_spelling():
    assert games.make("connect4", width=8.0, height="  5 ").options == {"width": 8, "height": 5}
    assert games.make("arena", turn_limit="+100", lineup="fa").options["turn_limit"] == 100
    assert games.make("arena", lineup="fa").options["lineup"] == "FA"
    assert integer_option(-(2**70), "x") == -(2**70)  # range is the game's business


def test_the_game_modules_check_their_own_options():
    """``games.connect4.make`` etc. are reachable without the registry: same checks."""
    import games.arena
    import games.connect4
    import games.gomoku
    import games.othello

    for make, options in [
        (games.connect4.make, {"width": 1e999}),
        (games.connect4.make, {"width": 7.5}),
        (games.othello.make, {"size": 8.0000001}),
        (games.gomoku.make, {"size": float("nan")}),
        (games.arena.make, {"turn_limit": 1e999}),
        (games.arena.make, {"map": {}}),
        (games.arena.make, {"lineup": None}),
    ]:
        with pytest.raises(games.GameError):
            make(**options)
    assert games.othello.make(size=6.0).options == {"size": 6}


def test_short_repr_never_raises():
    deep: list = []
    for _ in range(100_000):
        deep = [deep]
    assert short_repr(deep) == "<list>"
    assert short_repr(10**5000) == "<integer of ~5001 digits>"
    assert short_repr("x" * 1000, limit=10) == "'xxxxxx..."
    assert short_repr("\ud800") == "'\\ud800'"


# ----------------------------------------------------------------------------- -o KEY=VALUE
@FAST
@given(st.lists(ANY_TEXT | st.sampled_from(["width=8", "width=", "=3", "width", " = ", "size=8"]), max_size=4), NAMES)
def test_parse_options_then_make(pairs, name):
    try:
        options = games.parse_options(pairs)
    except games.GameError as e:
        _one_line(e)
        return
    for key, value in options.items():
        assert key and key == key.strip() and value == value.strip()
        assert any(pair.partition("=")[0].strip() == key for pair in pairs)
    try:
        game = games.make(name, **options)
    except games.GameError as e:
        _one_line(e)
    else:
        _check_made(name, game)


@pytest.mark.parametrize(
    "pairs, fragment",
    [
        (["=3"], "option '=3' is not KEY=VALUE"),
        (["width"], "not KEY=VALUE"),
        (["width=8", "width=9"], "option 'width' is given twice ('8' and '9')"),
        ([3], "is not KEY=VALUE text"),
    ],
)
def test_parse_options_refuses(pairs, fragment):
    with pytest.raises(games.GameError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        games.parse_options(pairs)


def test_parse_options_keeps_a_repeated_identical_option():
    assert games.parse_options(["width=8", " width = 8 "]) == {"width": "8"}


# ----------------------------------------------------------------------------- every command
BAD_OPTIONS = [
    ("width=1e999", "option 'width' of connect4 takes an integer, got '1e999'"),
    ("width=inf", "takes an integer, got 'inf'"),
    ("width=nan", "takes an integer, got 'nan'"),
    ("width=", "takes an integer, got ''"),
    ("width=7.9", "takes an integer, got '7.9'"),
    ("width=" + "9" * 5000, "takes an integer, got '9999"),  # past int()'s 4300-digit limit
    ("=3", "is not KEY=VALUE"),
    ("lineup=ZZZ", "unknown option 'lineup' for game 'connect4'"),
    ("wídth=８", "unknown option 'wídth'"),
    ("width=\udcff", "takes an integer, got '\\udcff'"),  # an undecodable argv byte
]


def _commands(tmp_path, option: str) -> dict[str, list[str]]:
    """Every command that takes game options, given ``-o option``; all name connect4."""
    onnx = str(tmp_path / "none.onnx")  # never read: the options are checked first
    return {
        "play-text": ["play-text", "connect4", "-o", option],
        "play": ["play", "connect4", "--agent", "greedy", "-o", option],
        "train": ["train", "connect4", "--run-dir", str(tmp_path / "run"), "-o", option],
        "arena": ["arena", "greedy", "random", "--game", "connect4", "-o", option],
        "analyze": ["analyze", "--checkpoint", onnx, "--game", "connect4", "-o", option],
        "bench search": ["bench", "search", "--game", "connect4", "--no-openspiel", "-o", option],
        "bench strength": ["bench", "strength", "connect4", "--checkpoint", onnx, "-o", option],
    }


def _assert_usage_error(argv: list[str], fragment: str, capsys) -> None:
    """``selfplay argv`` exits 2 with one line: ``selfplay: error: ...fragment...``."""
    assert main(argv) == 2, argv
    err = capsys.readouterr().err.strip()
    assert err.startswith("selfplay: error: "), err
    assert fragment in err and len(err.splitlines()) == 1 and "Traceback" not in err, err


@pytest.mark.parametrize("option, fragment", BAD_OPTIONS, ids=[o[:12] for o, _ in BAD_OPTIONS])
def test_a_bad_option_is_one_line_and_exit_2(option, fragment, tmp_path, capsys):
    _assert_usage_error(_commands(tmp_path, option)["play-text"], fragment, capsys)


@pytest.mark.parametrize("command", ["play", "train", "arena", "analyze", "bench search", "bench strength"])
@pytest.mark.parametrize("option, fragment", [BAD_OPTIONS[0], BAD_OPTIONS[6], BAD_OPTIONS[7]], ids=["1e999", "=3", "lineup"])
def test_a_bad_option_is_one_line_and_exit_2_in_every_command(command, option, fragment, tmp_path, capsys):
    _assert_usage_error(_commands(tmp_path, option)[command], fragment, capsys)
    assert not (tmp_path / "run").exists()  # train stops before it writes anything


def test_the_real_command_line_prints_no_traceback():
    """The installed entry point, undecodable argv bytes and all, in its own process."""
    proc = subprocess.run(
        [sys.executable, "-m", "selfplay", "play-text", "arena", "-o", "turn_limit=60", "-o", b"lineup=\xff".decode("utf-8", "surrogateescape")],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().startswith("selfplay: error: lineup '\\udcff' must be")
    assert len(proc.stderr.strip().splitlines()) == 1
