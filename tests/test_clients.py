"""The engine clients in examples/, each in its own runtime: the Node.js client (onnxruntime-node),
the browser game (onnxruntime-web in a real headless Chromium, played by clicks) and the
standalone pygame arena game (onnxruntime, no torch, no training code). Each is compared move by
move with the Python ``Brain`` on the same positions, and each client's encoder with the games'
own ``encode`` on many real positions, so a change to an encoding cannot silently break a client.

Node and Chromium are skipped with a reason when missing, except under CI (``CI`` set), where
they must be there (``.ci/run`` installs them).
"""

from __future__ import annotations

import functools
import importlib.util
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pygame
import pytest
import torch

import games
from export.encoding import describe_game
from export.exporter import export_brain
from export.positions import sample_positions
from export.runtime import Brain
from selfplay.model.network import NetConfig, build_network

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
NODE = shutil.which("node")
CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-headless-shell", "chromium-browser")) if p), None)


def _require(ok: bool, reason: str) -> None:
    """Skip without ``ok`` outside CI; under CI a missing tool is a failure."""
    if not ok:
        if os.environ.get("CI"):
            pytest.fail(f"{reason} (CI must provide it: see .ci/run)")
        pytest.skip(reason)


def _require_node() -> None:
    _require(NODE is not None, "node is not installed (Debian: apt-get install nodejs npm)")
    _require(
        (EXAMPLES / "node_modules" / "onnxruntime-node").is_dir(),
        "examples/node_modules is missing: cd examples && ONNXRUNTIME_NODE_INSTALL=skip npm ci",
    )


def _trained_like(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Seeded random weights, large enough that the policy is far from uniform."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=gen) * 0.3)
    return model.eval()


def export_test_brain(name: str, out: Path, seed: int = 0) -> Path:
    """A brain for ``name`` (connect4: ResNet 32x2 with a W/D/L head; arena: the tiny preset's
    16x2, scalar value) from seeded random weights, verified on 200 positions."""
    game = games.make(name)
    config = NetConfig(channels=32, blocks=2, value_head="wdl") if name == "connect4" else NetConfig(channels=16, blocks=2, hidden=32)
    model = _trained_like(build_network(config, game.obs_shape, game.num_actions), seed)
    export_brain(model, game, out, with_value=True, positions=sample_positions(game, 200, seed=2))
    return out


@pytest.fixture(scope="session")
def brains(tmp_path_factory):
    root = tmp_path_factory.mktemp("brains")
    return {name: export_test_brain(name, root / name) for name in ("connect4", "arena")}


def _check_decisions(brain_dir: Path, decisions: list[dict], where: str) -> None:
    """Each logged decision ({moves, probs, move}) against Python: replay the moves with
    ``games``, encode, ``Brain.evaluate``; probs within 1e-4, the move the argmax."""
    brain = Brain.load(brain_dir)
    game = brain.game()
    assert decisions, f"{where}: no brain decision was logged"
    for d in decisions:
        state = game.play(d["moves"]) if d["moves"] else game.initial_state()
        probs, value = brain.evaluate(game.encode(state), game.legal_mask(state))
        np.testing.assert_allclose(d["probs"], probs, atol=1e-4, err_msg=f"{where}: probs after {d['moves']}")
        if d.get("value") is not None:
            assert abs(d["value"] - value) <= 1e-4, f"{where}: value after {d['moves']}"
        assert d["move"] == int(np.argmax(probs)) and game.legal_mask(state)[d["move"]], f"{where}: move after {d['moves']}"


def _random_lines(game, count: int, seed: int) -> list[list[int]]:
    """Every prefix of random games (terminal positions included), ``count`` in all."""
    rng = np.random.default_rng(seed)
    lines: list[list[int]] = []
    while len(lines) < count:
        state, moves = game.initial_state(), []
        lines.append([])
        while not game.is_terminal(state) and len(lines) < count:
            action = int(rng.choice(np.flatnonzero(game.legal_mask(state))))
            state = game.next_state(state, action)
            moves.append(action)
            lines.append(list(moves))
    return lines[:count]


def _manifest_dir(game, path: Path) -> Path:
    """A directory holding the manifest sections an encoder reads (no model needed)."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "brain.json").write_text(json.dumps(describe_game(game)))
    return path


GAME_VARIANTS = [
    ("connect4", {}),
    ("connect4", {"width": 5, "height": 4}),
    ("arena", {}),
    ("arena", {"lineup": "FA", "map": "bridge", "turn_limit": 20}),
    ("arena", {"lineup": "AFFA", "map": "open"}),
    ("arena", {"lineup": "F", "map": "small", "turn_limit": 9}),
]


# ------------------------------------------------------------------------------ Node.js


@pytest.mark.parametrize("name, options", GAME_VARIANTS)
def test_the_javascript_encoder_and_rules_equal_the_games_own(name, options, tmp_path):
    """examples/web/rules.js (the browser's and Node's) builds each plane by its name in the
    manifest; on 400 real positions it gives games' own encode and legal mask, exactly."""
    _require_node()
    game = games.make(name, **options)
    lines = _random_lines(game, 400, seed=3)
    out = subprocess.run(
        [NODE, str(EXAMPLES / "node" / "encode.mjs"), str(_manifest_dir(game, tmp_path))],
        input=json.dumps({"lines": lines}), capture_output=True, text=True, timeout=60, check=True,
    )
    js = json.loads(out.stdout)
    for line, obs, mask, terminal in zip(lines, js["obs"], js["masks"], js["terminal"]):
        state = game.play(line) if line else game.initial_state()
        np.testing.assert_array_equal(np.float32(obs), game.encode(state).reshape(-1), err_msg=f"{name} {options} after {line}")
        assert np.array_equal(np.array(mask) > 0, game.legal_mask(state)) and terminal == bool(game.is_terminal(state))


def test_the_javascript_client_refuses_a_manifest_it_does_not_understand(tmp_path):
    """A renamed plane, a new game version or another shape: one line that says what, no play."""
    _require_node()
    game = games.make("arena")
    base = describe_game(game)
    cases = {
        "renamed plane": ("observation", lambda m: m["observation"]["planes"][7].update(name="kinds"), "plane 7 'kinds' of arena_v1 is unknown"),
        "new version": ("game", lambda m: m["game"].update(tag="arena_v2"), "the brain is for arena_v2; this client knows arena_v1"),
        "other shape": ("observation", lambda m: m["observation"].update(shape=[12, 8, 9]), "observation shape [12,8,9]"),
    }
    for label, (_, change, message) in cases.items():
        manifest = json.loads(json.dumps(base))
        change(manifest)
        (tmp_path / label).mkdir()
        (tmp_path / label / "brain.json").write_text(json.dumps(manifest))
        out = subprocess.run(
            [NODE, str(EXAMPLES / "node" / "encode.mjs"), str(tmp_path / label)],
            input='{"lines": [[]]}', capture_output=True, text=True, timeout=60,
        )
        assert out.returncode != 0 and message in out.stderr, (label, out.stderr[-400:])


@pytest.mark.parametrize("name", ["connect4", "arena"])
def test_the_node_client_plays_random_games_as_python_would(name, brains, tmp_path):
    _require_node()
    log = tmp_path / "decisions.json"
    out = subprocess.run(
        [NODE, str(EXAMPLES / "node" / "client.mjs"), str(brains[name]), "--games", "4", "--seed", "5", "--log", str(log)],
        capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "brain vs random:" in out.stdout and "onnxruntime-node" in out.stdout
    decisions = json.loads(log.read_text())["decisions"]
    assert {d["game"] for d in decisions} == {0, 1, 2, 3}
    _check_decisions(brains[name], decisions, f"node {name}")


def test_the_node_client_refuses_a_changed_model(brains, tmp_path):
    _require_node()
    copy = shutil.copytree(brains["connect4"], tmp_path / "brain")
    data = bytearray((copy / "brain.onnx").read_bytes())
    data[-1] ^= 1
    (copy / "brain.onnx").write_bytes(bytes(data))
    out = subprocess.run([NODE, str(EXAMPLES / "node" / "client.mjs"), str(copy)], capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "brain.onnx: its sha256 is not the manifest's" in out.stderr


# ------------------------------------------------------------------------------ the browser


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves examples/ (the page, rules.js, node_modules' onnxruntime-web) and the test's
    brains under /web/brains/NAME/, with the MIME types a module script and wasm need."""

    extensions_map = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".js": "text/javascript", ".mjs": "text/javascript", ".wasm": "application/wasm", ".json": "application/json",
    }  # fmt: skip
    brains: dict[str, Path] = {}

    def translate_path(self, path: str) -> str:
        parts = path.split("?")[0].split("/")
        if parts[1:3] == ["web", "brains"] and len(parts) > 4 and parts[3] in self.brains:
            return str(self.brains[parts[3]] / "/".join(parts[4:]))
        return super().translate_path(path)

    def log_message(self, *args) -> None:
        pass


def _serving(served: dict[str, Path]):
    """A page server of examples/ with the brain directories ``served`` under /web/brains/."""
    handler = type("Handler", (_Handler,), {"brains": served})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(EXAMPLES)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def page_server(brains):
    yield from _serving(brains)


@pytest.fixture(scope="session")
def arena_ladder(tmp_path_factory):
    """A shipped ladder's layout (``selfplay pretrained make-ladder``): two arena levels of seeded
    random weights and the ladder.json that command writes, opening at level 2."""
    from selfplay.tools.pretrained_ladder import ladder_index

    root = tmp_path_factory.mktemp("arena_ladder")
    levels = [{"level": k, "brain": f"level_{k}", "player": f"main0/g{10 * k}", "elo": 150.0 * (k - 1), "visits": 100 * k}
              for k in (1, 2)]
    for entry in levels:
        export_test_brain("arena", root / entry["brain"], seed=10 + entry["level"])
    (root / "ladder.json").write_text(json.dumps(ladder_index(games.make("arena"), levels, 200, start_level=2)))
    return root


@pytest.fixture
def ladder_server(brains, arena_ladder):
    yield from _serving({**brains, "arena_ladder": arena_ladder})


def _require_chromium() -> None:
    _require_node()
    _require(CHROMIUM is not None, "no system Chromium (Debian: apt-get install chromium)")
    _require((EXAMPLES / "node_modules" / "playwright-core").is_dir(), "examples/node_modules lacks playwright-core: cd examples && npm ci")


def _drive(args: list[str], timeout: float = 150) -> dict:
    out = subprocess.run(
        [NODE, str(EXAMPLES / "web" / "drive.mjs"), "--chromium", CHROMIUM, *args], capture_output=True, text=True, timeout=timeout
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout)


def test_a_person_plays_the_brain_in_the_browser_and_it_moves_as_python(brains, page_server, tmp_path):
    """The page in headless Chromium: whole games of Connect Four and the arena played by
    clicking the canvas, one game from each side; every brain move (onnxruntime-web, wasm)
    equals Python's Brain on the same position, probs within 1e-4. Screenshots of the end."""
    _require_chromium()
    urls = {name: f"{page_server}/web/?brain=brains/{name}/" for name in ("connect4", "arena")}
    results = _drive(["--out", str(tmp_path), "--games", "2", "--seed", "1", *urls.values()])
    for name, url in urls.items():
        page = results[url]
        assert page["errors"] == [], page["errors"]
        assert page["games"] == 2 and page["clicks"] > 0
        assert {d["game"] for d in page["log"]} == {0, 1}
        _check_decisions(brains[name], page["log"], f"browser {name}")
        shot = pygame.image.load(page["screenshot"])
        assert shot.get_size() == (760, 520)
        # the board is drawn: Connect Four's blue frame, the arena's walls
        colour = (40, 81, 168) if name == "connect4" else (86, 80, 74)
        assert any(shot.get_at((x, y))[:3] == colour for x in range(20, 460, 7) for y in range(70, 480, 7)), name
    if os.environ.get("SELFPLAY_SCREENSHOTS"):  # to refresh docs/img: SELFPLAY_SCREENSHOTS=docs/img
        for k, name in enumerate(urls):
            shutil.copy(tmp_path / f"page-{k}.png", Path(os.environ["SELFPLAY_SCREENSHOTS"]) / f"web-{name}.png")


def test_the_page_reads_a_ladders_levels_as_the_python_side_writes_them(arena_ladder):
    """examples/web/brain.js's ladderLevels (Node: no browser needed) on the ladder.json of a
    shipped ladder: every level's brain directory, label and visits, the start level."""
    _require(NODE is not None, "node is not installed (Debian: apt-get install nodejs npm)")
    script = (f"import {{ ladderLevels }} from {json.dumps((EXAMPLES / 'web' / 'brain.js').as_uri())};\n"
              "const index = JSON.parse(process.argv[1]);\n"
              "const out = [ladderLevels(index, 'http://host/web/brains/arena_ladder/'), "
              "ladderLevels(index, 'http://host/web/brains/arena_ladder/', '1').start];\n"
              "try { ladderLevels(index, 'http://host/', '3'); } catch (e) { out.push(e.message); }\n"
              "console.log(JSON.stringify(out));")
    index = (arena_ladder / "ladder.json").read_text()
    done = subprocess.run([NODE, "--input-type=module", "-e", script, index], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    read, chosen, refused = json.loads(done.stdout)
    assert read["start"] == 2 and chosen == 1 and refused == "level 3: the ladder has levels 1..2"
    assert read["levels"] == [
        {"level": 1, "elo": 0.0, "visits": 100, "label": "Level 1, Elo 0", "url": "http://host/web/brains/arena_ladder/level_1/"},
        {"level": 2, "elo": 150.0, "visits": 200, "label": "Level 2, Elo 150", "url": "http://host/web/brains/arena_ladder/level_2/"},
    ]


def test_a_person_picks_a_ladder_level_in_the_browser(arena_ladder, ladder_server, tmp_path):
    """A ladder page opens at the ladder's start level and offers every level in its Level box;
    picking one plays that level's brain. Every logged move equals Python's Brain of the level
    that made it."""
    _require_chromium()
    url = f"{ladder_server}/web/?ladder=brains/arena_ladder/"
    page = _drive(["--out", str(tmp_path), "--games", "2", "--levels", "2,1", "--seed", "2", url])[url]
    assert page["errors"] == [], page["errors"]
    assert page["levels"] == ["Level 1, Elo 0", "Level 2, Elo 150"] and page["level"] == 1
    assert page["games"] == 2 and "level 1 of 2" in page["about"]
    made = {d["level"] for d in page["log"]}
    assert made == {1, 2}
    for level in made:
        _check_decisions(arena_ladder / f"level_{level}", [d for d in page["log"] if d["level"] == level], f"browser level {level}")
    chosen = f"{ladder_server}/web/?ladder=brains/arena_ladder/&level=1"  # a level from the address
    page = _drive(["--out", str(tmp_path), "--games", "1", chosen])[chosen]
    assert page["errors"] == [] and {d["level"] for d in page["log"]} == {1}


def test_the_page_says_why_when_the_brain_is_missing(page_server, tmp_path):
    _require_chromium()
    url = f"{page_server}/web/?brain=brains/nothing/"
    errors = _drive(["--out", str(tmp_path), url])[url]["errors"]
    assert any("brain.json: HTTP 404 (export a brain there: see docs/export.md)" in e for e in errors), errors


# ------------------------------------------------------------------------------ the pygame game

PYGAME_GAME = EXAMPLES / "pygame_arena" / "arena_npc.py"


@pytest.fixture(scope="module")
def arena_npc():
    """examples/pygame_arena/arena_npc.py as a module (it is a script, not a package)."""
    spec = importlib.util.spec_from_file_location("arena_npc", PYGAME_GAME)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("options", [o for name, o in GAME_VARIANTS if name == "arena"])
def test_the_pygame_games_rules_and_encoder_equal_the_arenas_own(arena_npc, options):
    """The standalone game keeps its own rules and builds the observation from the manifest; on
    400 real positions its states, legal masks and observations are the arena's, exactly."""
    game = games.make("arena", **options)
    mine = arena_npc.Arena(describe_game(game))
    for line in _random_lines(game, 400, seed=4):
        state, s = game.initial_state(), mine.initial_state()
        for action in line:
            state, s = game.next_state(state, action), mine.play(s, action)
        assert s == state.tolist(), line
        np.testing.assert_array_equal(mine.legal_mask(s) > 0, game.legal_mask(state), err_msg=str(line))
        np.testing.assert_array_equal(mine.encoder(s), game.encode(state).reshape(-1), err_msg=f"{options} after {line}")


def test_the_pygame_game_refuses_an_encoding_it_does_not_know(arena_npc):
    manifest = describe_game(games.make("arena"))
    manifest["observation"]["planes"][9]["name"] = "ogres"
    with pytest.raises(arena_npc.BrainMismatch, match="plane 9 'ogres' of arena_v1 is unknown to this game"):
        arena_npc.Arena(manifest)
    manifest = describe_game(games.make("arena"))
    manifest["game"]["tag"] = "arena_v2"
    with pytest.raises(arena_npc.BrainMismatch, match="the brain is for arena_v2; this game plays arena_v1"):
        arena_npc.Arena(manifest)


def test_the_pygame_game_plays_headless_with_the_brain_and_without_torch(brains, tmp_path):
    """The game as a player runs it (SDL's dummy driver, clicks posted to pygame's event queue
    for the person's units): two whole games; every NPC move is Python Brain's, and the process
    never loaded torch, numba or any of our packages."""
    log, shot = tmp_path / "log.json", tmp_path / "arena.png"
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy", "PYGAME_HIDE_SUPPORT_PROMPT": "1"}
    out = subprocess.run(
        [sys.executable, str(PYGAME_GAME), str(brains["arena"]), "--demo-clicks", "--games", "2", "--fps", "0",
         "--log", str(log), "--screenshot", str(shot)],
        capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    assert "arena_npc: 2 games" in out.stdout
    result = json.loads(log.read_text())
    loaded = {name.split(".")[0] for name in result["modules"]}
    assert {"pygame", "numpy", "onnxruntime"} <= loaded
    assert not loaded & {"torch", "numba", "games", "search", "selfplay", "export", "onnx"}, loaded & {"torch", "numba", "games", "search", "selfplay", "export", "onnx"}
    assert len(result["results"]) == 2
    _check_decisions(brains["arena"], result["decisions"], "pygame arena")
    assert pygame.image.load(shot).get_size() == (8 * 64 + 16 + 230, 8 * 64 + 16)


def test_the_pygame_game_says_why_it_cannot_use_a_brain(brains, tmp_path):
    out = subprocess.run(
        [sys.executable, str(PYGAME_GAME), str(brains["connect4"]), "--games", "1"],
        capture_output=True, text=True, timeout=60, env={**os.environ, "SDL_VIDEODRIVER": "dummy"},
    )
    assert out.returncode == 2 and "arena_npc: the brain is for connect4_v1; this game plays arena_v1" in out.stderr
