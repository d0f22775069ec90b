"""``selfplay play`` in a real window on a real X server (Xvfb), played by real mouse clicks
(xdotool), checked on a screenshot of the screen (xwd), not of an off-screen surface.

Every other window test runs pygame with ``SDL_VIDEODRIVER=dummy``; this one runs the command as
a user would, with ``DISPLAY`` set and no video driver forced, so it fails if anything in our
packages changes the process environment (as ``import search`` once did, and the window never
appeared). Needs Debian's ``xvfb``, ``xdotool`` and ``x11-apps`` (``.ci/run`` installs them): it
is skipped without them, except under CI, where it fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import games
from games.render import CAPTION_HEIGHT, STYLES, cell_at, default_size

ROOT = Path(__file__).resolve().parents[1]
TOOLS = ("Xvfb", "xdotool", "xwd")
RED, YELLOW = STYLES["discs"][2], STYLES["discs"][3]


def _need_x_tools() -> None:
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        message = f"{', '.join(missing)} not installed (apt-get install xvfb xdotool x11-apps)"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI installs them: a missing tool there is a broken .ci/run
        pytest.skip(message)


def _user_env(display: str | None = None) -> dict[str, str]:
    """The environment of a user at a desktop: no video driver forced, ``DISPLAY`` set."""
    env = {k: v for k, v in os.environ.items() if k not in ("SDL_VIDEODRIVER", "DISPLAY")}
    env.update(PYGAME_HIDE_SUPPORT_PROMPT="1", PYTHONPATH=str(ROOT))
    if display is not None:
        env["DISPLAY"] = display
    return env


@pytest.fixture
def display():
    """A fresh Xvfb server on a free display number (``-displayfd`` picks it); yields ``":N"``."""
    _need_x_tools()
    read, write = os.pipe()
    server = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write), "-screen", "0", "800x700x24", "-nolisten", "tcp"],
        pass_fds=(write,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    os.close(write)
    with os.fdopen(read) as pipe:
        number = pipe.readline().strip()  # written once the server accepts connections
    if not number:
        server.kill()
        pytest.fail("Xvfb did not start")
    try:
        yield f":{number}"
    finally:
        server.terminate()
        server.wait(timeout=10)


def read_xwd(data: bytes) -> np.ndarray:
    """``uint8[H, W, 3]``: the RGB pixels of an XWD image (``xwd -root``), TrueColor ZPixmap."""
    header = np.frombuffer(data[:100], ">u4")
    header_size, _, fmt, _, width, height = header[:6]
    byte_order, bits_per_pixel, bytes_per_line = header[7], header[11], header[12]
    masks, ncolors = header[14:17], header[19]
    assert fmt == 2 and bits_per_pixel in (24, 32), f"unexpected XWD layout (format {fmt}, {bits_per_pixel} bpp)"
    start = header_size + 12 * ncolors
    size = int(bits_per_pixel) // 8
    rows = np.frombuffer(data[start : start + height * bytes_per_line], np.uint8).reshape(height, bytes_per_line)
    octets = rows[:, : size * width].reshape(height, width, size).astype(np.uint32)
    if byte_order == 1:  # MSBFirst
        octets = octets[..., ::-1]
    pixels = sum(octets[..., i] << (8 * i) for i in range(size))  # uint32[H, W]
    channels = [(pixels & int(m)) >> (int(m) & -int(m)).bit_length() - 1 for m in masks]
    return np.stack(channels, axis=-1).astype(np.uint8)


def screenshot(display: str) -> np.ndarray:
    out = subprocess.run(["xwd", "-root", "-silent"], env={**os.environ, "DISPLAY": display},
                         capture_output=True, timeout=30, check=True)
    return read_xwd(out.stdout)


def xdotool(display: str, *args: str) -> str:
    out = subprocess.run(["xdotool", *args], env={**os.environ, "DISPLAY": display},
                         capture_output=True, text=True, timeout=120, check=True)
    return out.stdout


def cell_centres(game, size: tuple[int, int]) -> tuple[list[int], list[int]]:
    """The pixel centres of the board's rows (y) and columns (x) in the picture that
    ``games.render`` draws at ``size``, found through its own ``cell_at``."""
    state = game.initial_state()
    width, height = size
    xs: dict[int, list[int]] = {}
    ys: dict[int, list[int]] = {}
    for x in range(width):
        if (cell := cell_at(game, state, size, (x, height // 2 - CAPTION_HEIGHT))) is not None:
            xs.setdefault(cell[1], []).append(x)
    for y in range(height):
        if (cell := cell_at(game, state, size, (width // 2, y))) is not None:
            ys.setdefault(cell[0], []).append(y)
    return [round(np.mean(ys[r])) for r in sorted(ys)], [round(np.mean(xs[c])) for c in sorted(xs)]


def board_on_screen(image: np.ndarray, origin: tuple[int, int], centres: tuple[list[int], list[int]]) -> np.ndarray:
    """``int8[rows, cols]``: the discs drawn at each hole's centre (1 red, 2 yellow, 0 neither),
    row 0 on top, read from the screenshot's pixels."""
    x0, y0 = origin
    ys, xs = centres
    board = np.zeros((len(ys), len(xs)), np.int8)
    for r, y in enumerate(ys):
        for c, x in enumerate(xs):
            pixel = image[y0 + y, x0 + x].astype(int)
            for value, colour in ((1, RED), (2, YELLOW)):
                if np.abs(pixel - colour).max() <= 12:
                    board[r, c] = value
    return board


def test_importing_our_packages_leaves_the_environment_alone():
    code = (
        "import os, pettingzoo  # pettingzoo sets SDL_AUDIODRIVER on import: not ours to judge\n"
        "before = dict(os.environ)\n"
        "import games, search, selfplay, selfplay.tools.cli, selfplay.tools.play, selfplay.training.trainer, selfplay.tools.analyze\n"
        "import games.render, games.pettingzoo_env\n"
        "changed = sorted(k for k in set(before) | set(os.environ) if before.get(k) != os.environ.get(k))\n"
        "print(changed)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=_user_env(), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_play_opens_a_real_window_and_plays_by_mouse_clicks(display, tmp_path):
    game = games.make("connect4")
    width, height = default_size(game)
    centres = cell_centres(game, (width, height))
    ys, xs = centres
    assert (len(ys), len(xs)) == (6, 7)
    command = [sys.executable, "-m", "selfplay", "play", "connect4", "--agent", "random", "--seed", "3"]
    player = subprocess.Popen(command, env=_user_env(display), cwd=tmp_path, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        try:
            window = xdotool(display, "search", "--sync", "--onlyvisible", "--pid", str(player.pid)).split()[0]
        except subprocess.TimeoutExpired:
            player.kill()
            pytest.fail(f"no window appeared on {display}; selfplay play printed: {player.communicate()[0][-2000:]}")
        # the window exists (as "pygame window") a moment before its caption is set
        deadline = time.monotonic() + 30
        while not (name := xdotool(display, "getwindowname", window)).startswith("selfplay: ") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert name.startswith("selfplay: connect4_v1 against random"), name
        geometry = dict(line.split("=") for line in xdotool(display, "getwindowgeometry", "--shell", window).split())
        origin = int(geometry["X"]), int(geometry["Y"])
        assert (int(geometry["WIDTH"]), int(geometry["HEIGHT"])) >= (width, height)

        board = np.zeros((6, 7), np.int8)
        for move in range(3):  # the person (red) drops a disc in the middle column; random replies
            xdotool(display, "mousemove", "--window", window, str(xs[3]), str(ys[0]), "click", "1")
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                board = board_on_screen(screenshot(display), origin, centres)
                if (board == 2).sum() == move + 1:  # the agent has answered
                    break
                assert player.poll() is None, player.communicate()[0][-2000:]
                time.sleep(0.2)
            assert (board == 1).sum() == move + 1 and (board == 2).sum() == move + 1, board

        image = screenshot(display)
        _save_png(image, tmp_path / "window.png")
        assert set(np.flatnonzero((board == 1).any(axis=0))) == {3}, board  # every click landed in column 3
        filled = board != 0
        assert (filled[:-1] <= filled[1:]).all(), board  # discs rest on discs: gravity, as drawn
        x0, y0 = origin
        strip = image[y0 + height - CAPTION_HEIGHT + 4, x0 + 4 : x0 + width - 4]  # the caption strip
        assert (np.abs(strip.astype(int) - STYLES["discs"][0]).max(axis=1) > 40).all()  # not board blue

        xdotool(display, "mousemove", "--window", window, str(xs[3]), str(ys[0]), "key", "Escape")  # XTEST, as the clicks: a sent event (key --window) was refused now and then
        assert player.wait(timeout=30) == 0
    finally:
        if player.poll() is None:
            player.kill()
            player.wait()


def _save_png(image: np.ndarray, path: Path) -> None:
    """The screenshot as a PNG under ``path``, and in ``$SELFPLAY_SCREENSHOTS`` when set (to look at)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    pyplot.imsave(path, image)
    if os.environ.get("SELFPLAY_SCREENSHOTS"):
        target = Path(os.environ["SELFPLAY_SCREENSHOTS"])
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target / path.name)
