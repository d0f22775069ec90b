"""A standalone pygame game with an exported arena brain as its NPCs.

This is how a game developer embeds a selfplay brain in a Python game: the game owns its rules
and its drawing, and asks the brain (``brain.onnx``, run by onnxruntime) for each NPC move. It
imports pygame, numpy and onnxruntime only: no torch, and nothing of selfplay's (``games``,
``search``, ``selfplay``, ``export``). The observation is built here from the brain's manifest
(``brain.json``): each plane by its name, at its offset, so a brain whose encoding this file does
not know is refused instead of fed wrong numbers.

    python examples/pygame_arena/arena_npc.py BRAIN_DIR              # you lead red, the brain blue
    python examples/pygame_arena/arena_npc.py BRAIN_DIR --human blue
    python examples/pygame_arena/arena_npc.py BRAIN_DIR --human none --opponent random   # watch

Click a green cell to step, an enemy in a red ring to attack it, your glowing unit to wait.
Keys: N a new game, Esc quit. Export a brain first: ``selfplay export RUN --out brains/arena``
(see docs/export.md).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pygame

# ------------------------------------------------------------------------------ the rules
# The arena's constants (docs/arena.md): unit kinds, maps, the start row, the move frame.
KINDS = {"F": ("fighter", 10, 3, 1), "A": ("archer", 6, 2, 3)}  # letter -> name, hp, damage, range
MAPS = {
    "pillars": ("........", "........", ".#....#.", "...##...", "...##...", ".#....#.", "........", "........"),
    "bridge": ("........", "........", "........", "###..###", "###..###", "........", "........", "........"),
    "open": ("........",) * 8,
    "small": ("......", "......", ".#..#.", ".#..#.", "......", "......"),
}
HP_SCALE, START_ROW = 10, 1
STEPS = ((-1, 0), (0, 1), (1, 0), (0, -1))  # forward, right, back, left in red's frame (row 0 on top)
MOVES = ("wait", "forward", "right", "back", "left")
TAG = "arena_v1"


class BrainMismatch(ValueError):
    """The brain is for a game or an encoding this file does not know."""


class Arena:
    """The arena's rules for the options in a brain's manifest. A state is a list of ints laid
    out as the manifest's game keeps it: ``[turn, cursor, hp of agent 0..2N-1, cell of agent
    0..2N-1]``, agent ``i = team * N + slot`` (red 0..N-1, blue N..2N-1), cell ``row * W + col``
    or -1 when dead; turn-order position ``p`` is team ``p % 2``, slot ``p // 2``."""

    def __init__(self, manifest: dict) -> None:
        info = manifest["game"]
        if info.get("tag") != TAG:
            raise BrainMismatch(f"the brain is for {info.get('tag')}; this game plays {TAG}")
        options = info.get("options") or {}
        self.lineup = str(options.get("lineup", "FAF"))
        self.limit = int(options.get("turn_limit", 60))
        rows = MAPS.get(str(options.get("map", "pillars")))
        if rows is None or any(k not in KINDS for k in self.lineup):
            raise BrainMismatch(f"unknown arena options {options}")
        self.h, self.w, self.n = len(rows), len(rows[0]), len(self.lineup)
        self.walls = [ch == "#" for row in rows for ch in row]
        first = (self.w - 2 * self.n + 1) // 2
        red = [(self.h - 1 - START_ROW) * self.w + first + 2 * k for k in range(self.n)]
        self.start = red + [self.h * self.w - 1 - cell for cell in red]
        self.num_actions = 5 + self.n
        self.encoder = Encoder(self, manifest)

    # a unit's constants
    def kind(self, i: int) -> tuple[str, int, int, int]:
        return KINDS[self.lineup[i % self.n]]

    def name(self, i: int) -> str:
        return f"{'red' if i < self.n else 'blue'}_{i % self.n}"

    def initial_state(self) -> list[int]:
        return [0, 0, *(self.kind(i)[1] for i in range(2 * self.n)), *self.start]

    def hp(self, s: list[int], i: int) -> int:
        return s[2 + i]

    def cell(self, s: list[int], i: int) -> int:
        return s[2 + 2 * self.n + i]

    def agent_at(self, position: int) -> int:
        return (position & 1) * self.n + (position >> 1)

    def acting(self, s: list[int]) -> int:
        return self.agent_at(s[1])

    def team_hp(self, s: list[int], team: int) -> int:
        return sum(s[2 + team * self.n : 2 + team * self.n + self.n])

    def is_terminal(self, s: list[int]) -> bool:
        return s[0] >= self.limit or self.team_hp(s, 0) == 0 or self.team_hp(s, 1) == 0

    def outcome(self, s: list[int], team: int) -> int:
        margin = self.team_hp(s, team) - self.team_hp(s, 1 - team)
        return (margin > 0) - (margin < 0)

    def step_target(self, s: list[int], agent: int, direction: int) -> int:
        """The cell a step in ``direction`` (0..3, the unit's own frame) reaches, or -1."""
        dr, dc = STEPS[direction]
        if agent >= self.n:  # blue's frame is red's turned by a half turn
            dr, dc = -dr, -dc
        row, col = divmod(self.cell(s, agent), self.w)
        r, c = row + dr, col + dc
        if not (0 <= r < self.h and 0 <= c < self.w) or self.walls[r * self.w + c]:
            return -1
        target = r * self.w + c
        return -1 if target in s[2 + 2 * self.n :] else target

    def distance(self, a: int, b: int) -> int:
        return abs(a // self.w - b // self.w) + abs(a % self.w - b % self.w)

    def legal_mask(self, s: list[int]) -> np.ndarray:
        mask = np.zeros(self.num_actions, np.float32)
        if self.is_terminal(s):
            return mask
        me = self.acting(s)
        mask[0] = 1.0
        for d in range(4):
            mask[1 + d] = self.step_target(s, me, d) >= 0
        enemies = self.n if me < self.n else 0
        for k in range(self.n):
            target = enemies + k
            mask[5 + k] = self.hp(s, target) > 0 and self.distance(self.cell(s, me), self.cell(s, target)) <= self.kind(me)[3]
        return mask

    def play(self, s: list[int], action: int) -> list[int]:
        if not self.legal_mask(s)[action]:
            raise ValueError(f"{self.action_text(action)} is not legal for {self.name(self.acting(s))}")
        s, me, n = list(s), self.acting(s), self.n
        if 1 <= action <= 4:
            s[2 + 2 * n + me] = self.step_target(s, me, action - 1)
        elif action >= 5:
            target = (n if me < n else 0) + action - 5
            s[2 + target] = max(s[2 + target] - self.kind(me)[2], 0)
            if s[2 + target] == 0:
                s[2 + 2 * n + target] = -1
        s[0] += 1
        position = s[1]
        for _ in range(2 * n):  # the next living unit in turn order
            position = (position + 1) % (2 * n)
            if s[2 + self.agent_at(position)] > 0:
                break
        s[1] = position
        return s

    def action_text(self, action: int) -> str:
        return MOVES[action] if action < 5 else f"attack {action - 5}"


class Encoder:
    """The brain's observation of a state, built from the manifest: each plane of
    ``observation.planes`` by its name, at its offset, from the acting unit's point of view."""

    def __init__(self, game: Arena, manifest: dict) -> None:
        self.game = game
        obs = manifest["observation"]
        c, h, w = obs["shape"]
        if (h, w) != (game.h, game.w) or manifest["actions"]["count"] != game.num_actions:
            raise BrainMismatch(f"the brain's shape {obs['shape']} / {manifest['actions']['count']} actions do not fit this arena")
        builders = {
            "walls": self._walls, "self": self._self, "turn_order": self._turn_order, "allies_hp": self._allies_hp,
            **{f"{name}s": (lambda k: lambda s, v, p: self._kind(s, v, p, k))(letter) for letter, (name, *_) in KINDS.items()},
            "enemy_reach": lambda s, v, p: self._reach(s, p, 0 if v >= game.n else 1, v >= game.n),
            "ally_reach": lambda s, v, p: self._reach(s, p, 1 if v >= game.n else 0, v >= game.n),
            "turns_left": lambda s, v, p: p.fill((game.limit - s[0]) / game.limit),
            **{f"enemy_{k}_hp": (lambda k: lambda s, v, p: self._enemy_hp(s, v, p, k))(k) for k in range(game.n)},
        }  # fmt: skip
        self.plan = []
        for plane in obs["planes"]:
            if plane["name"] not in builders:
                raise BrainMismatch(f"plane {plane['index']} '{plane['name']}' of {TAG} is unknown to this game: update its encoder")
            if plane["offset"] != plane["index"] * h * w:
                raise BrainMismatch(f"plane '{plane['name']}' has offset {plane['offset']}, not {plane['index'] * h * w}")
            self.plan.append((builders[plane["name"]], plane["index"]))
        if len(self.plan) != c:
            raise BrainMismatch(f"the manifest lists {len(self.plan)} planes for shape {obs['shape']}")
        self.shape = (c, h, w)

    def __call__(self, s: list[int]) -> np.ndarray:
        """float32[C * H * W]: the acting unit's observation, flat (the model's ``obs`` row)."""
        out = np.zeros(self.shape, np.float32)
        viewer = self.game.acting(s)
        for build, index in self.plan:
            build(s, viewer, out[index])
        return out.reshape(-1)

    def _at(self, cell: int, flip: bool) -> tuple[int, int]:
        """Where board cell ``cell`` appears to the viewer: blue sees the board half-turned."""
        g = self.game
        if flip:
            cell = g.h * g.w - 1 - cell
        return divmod(cell, g.w)

    def _living(self, s: list[int]) -> list[int]:
        """Living agents in turn order from the acting one."""
        g = self.game
        order = (g.agent_at((s[1] + k) % (2 * g.n)) for k in range(2 * g.n))
        return [i for i in order if g.hp(s, i) > 0]

    def _walls(self, s, v, plane):
        for cell, wall in enumerate(self.game.walls):
            if wall:
                plane[self._at(cell, v >= self.game.n)] = 1.0

    def _self(self, s, v, plane):
        if self.game.hp(s, v) > 0:
            plane[self._at(self.game.cell(s, v), v >= self.game.n)] = 1.0

    def _turn_order(self, s, v, plane):
        n2 = 2 * self.game.n
        for order, i in enumerate(self._living(s)):
            plane[self._at(self.game.cell(s, i), v >= self.game.n)] = (n2 - order) / n2

    def _allies_hp(self, s, v, plane):
        g = self.game
        for i in self._living(s):
            if (i >= g.n) == (v >= g.n):
                plane[self._at(g.cell(s, i), v >= g.n)] = g.hp(s, i) / HP_SCALE

    def _enemy_hp(self, s, v, plane, k):
        g = self.game
        i = (0 if v >= g.n else g.n) + k
        if g.hp(s, i) > 0:
            plane[self._at(g.cell(s, i), v >= g.n)] = g.hp(s, i) / HP_SCALE

    def _kind(self, s, v, plane, letter):
        g = self.game
        for i in self._living(s):
            if g.lineup[i % g.n] == letter:
                plane[self._at(g.cell(s, i), v >= g.n)] = 1.0

    def _reach(self, s, plane, team, flip):
        g = self.game
        for i in range(team * g.n, team * g.n + g.n):
            if g.hp(s, i) == 0:
                continue
            row, col = divmod(g.cell(s, i), g.w)
            _, _, damage, reach = g.kind(i)
            for r in range(max(row - reach, 0), min(row + reach, g.h - 1) + 1):
                spare = reach - abs(r - row)
                for c in range(max(col - spare, 0), min(col + spare, g.w - 1) + 1):
                    if (r, c) != (row, col):
                        at = self._at(r * g.w + c, flip)
                        plane[at] = min(plane[at] + damage / HP_SCALE, 1.0)


# ------------------------------------------------------------------------------ the brain
class Brain:
    """``brain.onnx`` on onnxruntime's CPU provider, checked against ``brain.json``."""

    def __init__(self, directory: str | Path) -> None:
        directory = Path(directory)
        self.manifest = json.loads((directory / "brain.json").read_text())
        if self.manifest.get("format") != "selfplay-brain" or self.manifest.get("format_version") != 1:
            raise BrainMismatch(f"{directory}: not a version 1 selfplay brain")
        model = (directory / self.manifest["model_file"]).read_bytes()
        if hashlib.sha256(model).hexdigest() != self.manifest["sha256"]:
            raise BrainMismatch(f"{directory}: the model's sha256 is not the manifest's")
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        self.session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])

    def probs(self, obs: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """float32[A]: the brain's move probabilities for one observation (0 on illegal moves)."""
        (probs,) = self.session.run(["probs"], {"obs": obs[None], "action_mask": mask[None]})
        return probs[0]


# ------------------------------------------------------------------------------ the game
CELL, PAD, PANEL = 64, 8, 230
COLOURS = {"ground": (226, 218, 196), "wall": (86, 80, 72), "red": (206, 58, 52), "blue": (46, 96, 206), "step": (42, 154, 58),
           "attack": (208, 16, 16), "acting": (255, 214, 0), "text": (30, 30, 30), "bg": (244, 241, 234)}  # fmt: skip


class Match:
    """One window, one game at a time: the person's team, the NPC brain's, or two NPC sides."""

    def __init__(self, brain: Brain, human: str, opponent: str, rng: np.random.Generator) -> None:
        self.brain, self.rng = brain, rng
        self.game = Arena(brain.manifest)
        self.human = {"red": 0, "blue": 1, "none": -1}[human]
        self.opponent = opponent  # the side the person does not play: "brain" or "random"
        self.log: list[dict] = []  # every brain decision: moves before it, probs, move
        self.results: list[int] = []
        g = self.game
        self.screen = pygame.display.set_mode((g.w * CELL + 2 * PAD + PANEL, g.h * CELL + 2 * PAD))
        pygame.display.set_caption("Arena: NPCs by a selfplay brain")
        self.font, self.small = pygame.font.Font(None, 28), pygame.font.Font(None, 22)
        self.new_game()

    def new_game(self) -> None:
        self.state, self.moves, self.last = self.game.initial_state(), [], None

    def team_to_move(self) -> int:
        return self.game.acting(self.state) // self.game.n

    def human_to_move(self) -> bool:
        return not self.game.is_terminal(self.state) and self.team_to_move() == self.human

    def npc_move(self) -> None:
        """The brain (or, as the person's stand-in, a random mover) moves the acting unit."""
        g, s = self.game, self.state
        mask = g.legal_mask(s)
        if self.human == -1 and self.opponent == "random" and self.team_to_move() == 1:
            action = int(self.rng.choice(np.flatnonzero(mask)))
        else:
            probs = self.brain.probs(g.encoder(s), mask)
            action = int(np.argmax(probs))
            self.log.append({"moves": list(self.moves), "probs": probs.tolist(), "move": action})
            self.last = (g.name(g.acting(s)), g.action_text(action), probs)
        self.play(action)

    def play(self, action: int) -> None:
        self.state = self.game.play(self.state, action)
        self.moves.append(action)
        if self.game.is_terminal(self.state):
            self.results.append(self.game.outcome(self.state, max(self.human, 0)))

    def targets(self) -> dict[tuple[int, int], int]:
        """The person's legal moves by the screen point to click (a cell's centre)."""
        g, s = self.game, self.state
        if not self.human_to_move():
            return {}
        me, out = g.acting(s), {}
        for action in np.flatnonzero(g.legal_mask(s)):
            cell = g.cell(s, me)
            if 1 <= action <= 4:
                cell = g.step_target(s, me, action - 1)
            elif action >= 5:
                cell = g.cell(s, (g.n if me < g.n else 0) + action - 5)
            out[(PAD + cell % g.w * CELL + CELL // 2, PAD + cell // g.w * CELL + CELL // 2)] = int(action)
        return out

    def click(self, pos: tuple[int, int]) -> None:
        for (x, y), action in self.targets().items():
            if abs(pos[0] - x) < CELL // 2 and abs(pos[1] - y) < CELL // 2:
                self.play(action)
                return

    def draw(self) -> None:
        g, s, screen = self.game, self.state, self.screen
        screen.fill(COLOURS["bg"])
        for cell, wall in enumerate(g.walls):
            rect = (PAD + cell % g.w * CELL, PAD + cell // g.w * CELL, CELL - 1, CELL - 1)
            pygame.draw.rect(screen, COLOURS["wall" if wall else "ground"], rect)
        for (x, y), action in self.targets().items():
            if action:
                pygame.draw.circle(screen, COLOURS["attack" if action >= 5 else "step"], (x, y), CELL * 0.44, 4)
        acting = -1 if g.is_terminal(s) else g.acting(s)
        for i in range(2 * g.n):
            if g.hp(s, i) <= 0:
                continue
            x, y = PAD + g.cell(s, i) % g.w * CELL + CELL // 2, PAD + g.cell(s, i) // g.w * CELL + CELL // 2
            if i == acting:
                pygame.draw.circle(screen, COLOURS["acting"], (x, y), CELL * 0.47)
            pygame.draw.circle(screen, COLOURS["red" if i < g.n else "blue"], (x, y), CELL * 0.34)
            label = self.font.render(f"{g.lineup[i % g.n]}{i % g.n}", True, (255, 255, 255))
            screen.blit(label, label.get_rect(center=(x, y)))
            width = int(CELL * 0.76 * g.hp(s, i) / g.kind(i)[1])
            pygame.draw.rect(screen, (60, 200, 60), (x - CELL * 0.38, y + CELL * 0.34, width, 5))
        x0, lines = PAD * 2 + g.w * CELL, self.status_lines()
        for k, line in enumerate(lines):
            screen.blit(self.small.render(line, True, COLOURS["text"]), (x0, PAD + 24 * k))
        pygame.display.flip()

    def status_lines(self) -> list[str]:
        g, s = self.game, self.state
        lines = [f"turn {s[0]}/{g.limit}", f"HP red {g.team_hp(s, 0)}  blue {g.team_hp(s, 1)}"]
        if g.is_terminal(s):
            margin = g.team_hp(s, 0) - g.team_hp(s, 1)
            lines.append("red wins" if margin > 0 else "blue wins" if margin < 0 else "a draw")
            lines.append("N: a new game")
        else:
            lines.append(f"{g.name(g.acting(s))} to move" + (" (you)" if self.human_to_move() else ""))
        if self.last:
            who, what, probs = self.last
            lines += ["", f"NPC {who}: {what}"]
            lines += [f"  {g.action_text(a):<9} {100 * p:5.1f}%" for a, p in enumerate(probs)]
        return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The arena against NPCs run by an exported selfplay brain.")
    parser.add_argument("brain", help="a brain directory (brain.onnx and brain.json) for arena_v1")
    parser.add_argument("--human", choices=("red", "blue", "none"), default="red", help="the team you lead (none: watch)")
    parser.add_argument("--opponent", choices=("brain", "random"), default="brain", help="with --human none: blue's mover")
    parser.add_argument("--games", type=int, default=0, help="quit after this many games (0: play until the window closes)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random mover and of --demo-clicks")
    parser.add_argument("--demo-clicks", action="store_true", help="click random legal moves for the person (a demo, and the test)")
    parser.add_argument("--fps", type=int, default=30, help="frames a second (0: as fast as possible)")
    parser.add_argument("--log", help="write the brain's decisions and the loaded modules here as JSON")
    parser.add_argument("--screenshot", help="save the last frame here (PNG)")
    args = parser.parse_args(argv)

    pygame.display.init()  # not pygame.init(): the game has no sound
    pygame.font.init()
    try:
        match = Match(Brain(args.brain), args.human, args.opponent, np.random.default_rng(args.seed))
    except BrainMismatch as e:
        print(f"arena_npc: {e}", file=sys.stderr)
        return 2
    clock, running = pygame.time.Clock(), True
    while running:
        if match.human_to_move() and args.demo_clicks and not pygame.event.peek(pygame.MOUSEBUTTONDOWN):
            points = sorted(match.targets())
            x, y = points[int(match.rng.integers(len(points)))]
            pygame.event.post(pygame.event.Event(pygame.MOUSEBUTTONDOWN, pos=(x, y), button=1))
        for event in pygame.event.get():
            if event.type == pygame.QUIT or (event.type == pygame.KEYDOWN and event.key == pygame.K_ESCAPE):
                running = False
            elif event.type == pygame.KEYDOWN and event.key == pygame.K_n:
                match.new_game()
            elif event.type == pygame.MOUSEBUTTONDOWN and event.button == 1:
                match.click(event.pos)
        if not match.game.is_terminal(match.state) and not match.human_to_move():
            match.npc_move()
        match.draw()
        if match.game.is_terminal(match.state):
            if args.games and len(match.results) >= args.games:
                running = False
            elif args.demo_clicks or args.human == "none":
                match.new_game()
        if args.fps:
            clock.tick(args.fps)
    if args.screenshot:
        pygame.image.save(match.screen, args.screenshot)
    if args.log:
        Path(args.log).write_text(json.dumps({"decisions": match.log, "results": match.results, "modules": sorted(sys.modules)}))
    print(f"arena_npc: {len(match.results)} games, results for {args.human}: {match.results}")
    pygame.quit()
    return 0


if __name__ == "__main__":
    sys.exit(main())
