"""League bookkeeping (AlphaStar, Vinyals et al. 2019, scaled down): who plays whom, when a
learner is frozen, and when an exploiter is reset. Pure functions over plain data; no torch.

The population (:class:`LeagueConfig`) has three kinds of learners, each a full AlphaZero
learner (``selfplay.league.run`` runs them on the self-play and learning machinery of
``selfplay train``):

* **main agents** (``main``): ``main_selfplay`` (35%) self-play, ``main_pfsp`` (50%) prioritized
  fictitious self-play against every frozen player weighted ``(1 - p)^2``, and the rest (15%)
  *verification*, AlphaStar's two checks, both ``(1 - p)^2``: exploitation, every frozen main
  exploiter once the learner wins fewer than 30% (``1 - verification_win_rate``) against any of
  them; else forgetting: the snapshots of a current main agent (picked at random, as the
  self-play branch picks one), oldest first, less their monotonic suffix
  (:func:`remove_monotonic_suffix`), once the learner wins fewer than ``verification_win_rate``
  (70%) against any of those left; else that share is self-play. The self-play branch picks a
  current main agent; when a main agent wins ``main_selfplay_win_rate`` (30%) or less against
  it, it plays that agent's snapshots instead, weighted ``p (1 - p)``.
* **main exploiters** (``main_exploiter``): play a current main agent while they win more than
  ``exploiter_win_rate`` (10%) against it, else its snapshots weighted ``p (1 - p)``. Reset to
  the seed network after every freeze (``main_exploiter_reset``).
* **league exploiters** (``league_exploiter``): PFSP against every frozen player weighted
  ``min(0.5, 1 - p)``; reset with probability ``league_exploiter_reset`` (0.25) after a freeze.

``p`` is always the learner's win rate against the opponent, draws counting half, from the
decayed payoff (:class:`Payoff`); an opponent never met counts 0.5. A branch with no candidate
falls back to the self-play branch (for exploiters: the current main agent). A learner is frozen
(a copy joins the pool of frozen players) once it has learned ``min_generations`` generations
since its last freeze and wins at least ``freeze_win_rate`` (70%) against every pool member it
is judged against (main agents and league exploiters: every frozen player; main exploiters: the
current main agents), or after ``max_generations`` generations in any case.

Names. A learner's network at generation ``g`` is the player ``NAME/gG`` (``main0/g12``); after a
reset the member's next incarnation is ``NAME.R`` (``mexp0.1/g3``). A frozen snapshot keeps the
player name it had when frozen. The untrained network that every learner starts from is the
player ``seed``, the first frozen player and the Elo anchor (0).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Mapping

import numpy as np

from ..evaluation.agents import is_baseline
from ..training.messages import SCRIPT

__all__ = [
    "KINDS",
    "SEED",
    "LeagueConfig",
    "Member",
    "Payoff",
    "Snapshot",
    "freeze_due",
    "opponent_distribution",
    "pfsp_weights",
    "remove_monotonic_suffix",
    "reset_after_freeze",
]

MAIN, MAIN_EXPLOITER, LEAGUE_EXPLOITER = "main", "main_exploiter", "league_exploiter"
KINDS = (MAIN, MAIN_EXPLOITER, LEAGUE_EXPLOITER)
SEED = "seed"  # the untrained network every learner starts from: the first frozen player
SCRIPTED = "script"  # the kind of a scripted player's Snapshot: a fixed member of the pool, no network
WEIGHTINGS = ("squared", "variance", "linear_capped")


class LeagueError(ValueError):
    """A bad league setting or league directory: one line."""


def _f(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class LeagueConfig:
    """The population and its matchmaking (AlphaStar's defaults, scaled down)."""

    main_agents: int = _f(1, "main agents: the league's product, robust against everything in the pool")
    main_exploiters: int = _f(1, "main exploiters: play only the current main agents, reset after each freeze")
    league_exploiters: int = _f(1, "league exploiters: PFSP against every frozen player, sometimes reset")
    main_selfplay: float = _f(0.35, "main agents: share of games in the self-play branch")
    main_pfsp: float = _f(0.5, "main agents: share of games in PFSP (1 - p)^2 against every frozen player; "
                               "the rest is verification against snapshots they have started losing to")
    main_selfplay_win_rate: float = _f(
        0.3, "main agents: at or below this win rate against a current main agent, play its snapshots p (1 - p) instead")
    verification_win_rate: float = _f(
        0.7, "main agents' verification: every main-exploiter snapshot once one holds them under 1 - this; else a "
             "main agent's snapshots less their monotonic suffix, once one of those holds them under this")
    exploiter_win_rate: float = _f(
        0.1, "main exploiters: play the current main agent while winning more than this against it, else its snapshots")
    main_exploiter_reset: float = _f(1.0, "probability that a main exploiter is reset to the seed network after a freeze")
    league_exploiter_reset: float = _f(0.25, "probability that a league exploiter is reset to the seed network after a freeze")
    freeze_win_rate: float = _f(0.7, "freeze a learner once it wins at least this against every player it is judged against")
    min_generations: int = _f(6, "generations a learner trains after a freeze before it may be frozen again")
    max_generations: int = _f(12, "generations after which a learner is frozen whatever its win rates")
    payoff_decay: float = _f(0.9, "each generation's games against an opponent weigh this much more than the ones before")
    keep_snapshots: int = _f(
        40, "frozen snapshots kept on disk and in the pool; beyond it the oldest ones no ladder needs are pruned "
            "(their games stay in the log and the ratings)")
    plot_seconds: float = _f(60.0, "redraw the plots and ratings at most this often (seconds)")
    scripts: str = _f(
        "all", "fixed players in the pool of frozen players, comma-separated: the game's scripts (the arena's "
               "NPCs), random, greedy, mcts:N; 'all' (every script the game ships, and others after it: 'all,mcts:200'), "
               "or 'none'")
    init: str = _f(
        "", "a checkpoint (or run directory) for the seed network: every member starts from it and exploiters are "
            "reset to it, as AlphaStar's are to its supervised agent; its architecture is the members' "
            "(default: a fresh network)")

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(f.default, str):
                if not isinstance(value, str):
                    raise LeagueError(f"league: {f.name} must be a string, got {value!r}")
                continue
            want = int if isinstance(f.default, int) else float
            if isinstance(value, bool) or not isinstance(value, (int, float)) or (want is int and not isinstance(value, int)):
                raise LeagueError(f"league: {f.name} must be {want.__name__}, got {value!r}")
            if not math.isfinite(value) or value < 0:
                raise LeagueError(f"league: {f.name} must be finite and >= 0, got {value!r}")
        if self.main_agents < 1:
            raise LeagueError(f"league: main_agents must be >= 1, got {self.main_agents}")
        if self.main_selfplay + self.main_pfsp > 1 + 1e-9:
            raise LeagueError(f"league: main_selfplay + main_pfsp must be <= 1, got {self.main_selfplay + self.main_pfsp:g}")
        for name in ("main_selfplay_win_rate", "verification_win_rate", "exploiter_win_rate", "main_exploiter_reset",
                     "league_exploiter_reset", "freeze_win_rate", "payoff_decay"):
            if getattr(self, name) > 1:
                raise LeagueError(f"league: {name} must be in [0, 1], got {getattr(self, name)}")
        if not 1 <= self.min_generations <= self.max_generations:
            raise LeagueError(f"league: need 1 <= min_generations <= max_generations, got {self.min_generations} "
                              f"and {self.max_generations}")
        if self.keep_snapshots < 2:
            raise LeagueError(f"league: keep_snapshots must be >= 2, got {self.keep_snapshots}")

    @property
    def main_verification(self) -> float:
        return max(0.0, 1.0 - self.main_selfplay - self.main_pfsp)

    def script_players(self, available: Any) -> list[str]:
        """The pool's fixed players, as opponent names (``script:nearest``, ``script:mcts:200``),
        from the names of the game's scripts ``available`` and the baselines random, greedy and
        mcts:N; one line for a name that is neither."""
        available = list(available)
        text = self.scripts.strip()
        if text in ("", "none"):
            return []
        names: list[str] = []
        for name in filter(None, (n.strip() for n in text.split(","))):
            names += [one for one in (available if name == "all" else [name]) if one not in names]
        unknown = [n for n in names if n not in available and not is_baseline(n)]
        if unknown:
            raise LeagueError(f"league: scripts {', '.join(unknown)}: the game's scripts are {', '.join(available) or 'none'}, "
                              "and the baselines random, greedy, mcts:N")
        return [SCRIPT + n for n in names]

    def member_names(self) -> list[tuple[str, str]]:
        """``[(name, kind)]`` of the population, in turn order: main0.., mexp0.., lexp0.."""
        return ([(f"main{i}", MAIN) for i in range(self.main_agents)]
                + [(f"mexp{i}", MAIN_EXPLOITER) for i in range(self.main_exploiters)]
                + [(f"lexp{i}", LEAGUE_EXPLOITER) for i in range(self.league_exploiters)])

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "LeagueConfig":
        extra = sorted(set(data) - {f.name for f in fields(cls)})
        if extra:
            raise LeagueError(f"league: unknown field(s) {', '.join(extra)}")
        return cls(**data)


# ----------------------------------------------------------------------------- population


@dataclass
class Member:
    """A learner of the population. ``generation`` counts within the current incarnation."""

    name: str  # main0, mexp0, lexp0
    kind: str  # one of KINDS
    incarnation: int = 0  # resets so far; each one trains in its own directory from the seed
    generation: int = 0
    since_freeze: int = 0  # generations learned since the last freeze (or reset)
    parent: str = SEED  # the snapshot this incarnation started from
    games: int = 0  # league games played as a learner, all incarnations

    @property
    def label(self) -> str:
        """The incarnation's name: ``main0``, or ``mexp0.2`` after two resets."""
        return self.name if self.incarnation == 0 else f"{self.name}.{self.incarnation}"

    @property
    def player(self) -> str:
        """The current network as a player: ``main0/g12``."""
        return f"{self.label}/g{self.generation}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Snapshot:
    """A frozen player: a copy of a learner's network, opponent of the others from then on."""

    name: str  # the player name it had when frozen (main0/g12), or "seed"
    member: str  # the member it came from ("" for the seed)
    kind: str  # the member's kind ("" for the seed)
    step: int  # its checkpoint step in the snapshots directory
    elapsed: float = 0.0  # league seconds when it was frozen
    parent: str = ""  # the snapshot its incarnation continued from when it was frozen

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Payoff:
    """Decayed win/draw/loss counts of each learner (by member name) against each opponent (a
    snapshot name, or a member name for its current network). :meth:`update` multiplies a pair's
    counts by ``decay`` before adding a generation's games, so the win rate follows a learner
    that changes."""

    def __init__(self, decay: float) -> None:
        self.decay = float(decay)
        self.counts: dict[tuple[str, str], np.ndarray] = {}  # (learner, opponent) -> float64[3] W/D/L

    def update(self, learner: str, opponent: str, wins: float, draws: float, losses: float) -> None:
        old = self.counts.get((learner, opponent), np.zeros(3))
        self.counts[(learner, opponent)] = old * self.decay + np.array([wins, draws, losses], np.float64)

    def win_rate(self, learner: str, opponent: str) -> float:
        """``(wins + draws / 2) / games`` of ``learner`` against ``opponent``; 0.5 if never met."""
        wdl = self.counts.get((learner, opponent))
        if wdl is None or wdl.sum() <= 0:
            return 0.5
        return float((wdl[0] + wdl[1] / 2) / wdl.sum())

    def forget(self, learner: str) -> None:
        """A reset learner is a new network: drop its row."""
        for key in [k for k in self.counts if k[0] == learner]:
            del self.counts[key]


def pfsp_weights(win_rates: Any, weighting: str) -> np.ndarray:
    """float64[K] opponent probabilities from the learner's ``win_rates`` float[K] against them
    (AlphaStar's PFSP): ``squared`` ``(1 - p)^2`` (hardest first), ``variance`` ``p (1 - p)``
    (even matches first), ``linear_capped`` ``min(0.5, 1 - p)``. All-zero weights give uniform."""
    p = np.asarray(win_rates, np.float64)
    if weighting == "squared":
        w = (1 - p) ** 2
    elif weighting == "variance":
        w = p * (1 - p)
    elif weighting == "linear_capped":
        w = np.minimum(0.5, 1 - p)
    else:
        raise LeagueError(f"unknown PFSP weighting {weighting!r}; expected one of {', '.join(WEIGHTINGS)}")
    total = w.sum()
    if p.size == 0:
        return w
    return w / total if total > 1e-10 else np.full(p.size, 1.0 / p.size)


def remove_monotonic_suffix(win_rates: Any, players: list[str]) -> tuple[list[float], list[str]]:
    """AlphaStar's forgetting filter. ``win_rates`` float[K]: the learner's against ``players``,
    one main agent's snapshots, oldest first. A learner wins less against each newer snapshot
    when it is learning; a snapshot it wins less against than a newer one is one it has
    forgotten how to beat. So the longest suffix along which the win rate never rises is
    dropped: what is left ends with the last snapshot beaten more often than the one before it.
    Returns ``(win_rates, players)`` cut to that length; both empty when the rate never rises
    (a single snapshot included)."""
    rates = [float(p) for p in win_rates]
    for i in range(len(rates) - 1, 0, -1):
        if rates[i - 1] < rates[i]:
            return rates[: i + 1], list(players[: i + 1])
    return [], []


def _pfsp(names: list[str], learner: str, payoff: Payoff, weighting: str) -> dict[str, float]:
    if not names:
        return {}
    weights = pfsp_weights([payoff.win_rate(learner, n) for n in names], weighting)
    return {n: float(w) for n, w in zip(names, weights) if w > 0}


def _mix(parts: list[tuple[float, dict[str, float]]]) -> dict[str, float]:
    out: dict[str, float] = {}
    for share, dist in parts:
        for name, p in dist.items():
            out[name] = out.get(name, 0.0) + share * p
    total = sum(out.values())
    return {n: p / total for n, p in out.items() if p > 0}


def opponent_distribution(member: Member, members: list[Member], snapshots: list[Snapshot], payoff: Payoff,
                          config: LeagueConfig) -> dict[str, float]:
    """``{opponent: probability}`` for ``member``'s next games: opponents are snapshot names, or
    member names standing for their current network (``member.name`` itself is self-play). See
    the module docstring for each kind's branches; probabilities sum to 1."""
    me = member.name
    mains = [m.name for m in members if m.kind == MAIN]

    def main_snapshots(main: str) -> list[str]:
        return [s.name for s in snapshots if s.member == main]

    def selfplay_against(main: str) -> dict[str, float]:
        # the learner's own name is self-play
        if main != me and payoff.win_rate(me, main) <= config.main_selfplay_win_rate and main_snapshots(main):
            return _pfsp(main_snapshots(main), me, payoff, "variance")
        return {main: 1.0}

    def selfplay_branch() -> dict[str, float]:
        # one current main agent at random
        return _mix([(1.0 / len(mains), selfplay_against(main)) for main in mains])

    everyone = [s.name for s in snapshots]
    if member.kind == MAIN:
        exploiters = [s.name for s in snapshots if s.kind == MAIN_EXPLOITER]
        exploited = any(payoff.win_rate(me, n) < 1 - config.verification_win_rate for n in exploiters)

        def verification_against(main: str) -> dict[str, float]:
            # AlphaStar: exploitation first (every main exploiter snapshot), then forgetting
            if exploited:
                return _pfsp(exploiters, me, payoff, "squared")
            history = main_snapshots(main)
            rates, history = remove_monotonic_suffix([payoff.win_rate(me, n) for n in history], history)
            if rates and min(rates) < config.verification_win_rate:
                return _pfsp(history, me, payoff, "squared")
            return selfplay_against(main)  # nothing to verify: this main agent's self-play branch

        verification = _mix([(1.0 / len(mains), verification_against(main)) for main in mains])
        branches = [(config.main_selfplay, selfplay_branch()), (config.main_pfsp, _pfsp(everyone, me, payoff, "squared")),
                    (config.main_verification, verification)]
        # a branch without candidates (PFSP in an empty pool) plays the self-play branch instead
        fallback = sum(share for share, dist in branches if not dist)
        return _mix([(share, dist) for share, dist in branches if dist] + [(fallback, selfplay_branch())])
    if member.kind == MAIN_EXPLOITER:
        parts = []
        for main in mains:
            if payoff.win_rate(me, main) > config.exploiter_win_rate or not main_snapshots(main):
                parts.append((1.0 / len(mains), {main: 1.0}))
            else:
                parts.append((1.0 / len(mains), _pfsp(main_snapshots(main), me, payoff, "variance")))
        return _mix(parts)
    if member.kind == LEAGUE_EXPLOITER:
        return _pfsp(everyone, me, payoff, "linear_capped") or {mains[0]: 1.0}
    raise LeagueError(f"unknown member kind {member.kind!r}")


def freeze_due(member: Member, members: list[Member], snapshots: list[Snapshot], payoff: Payoff,
               config: LeagueConfig) -> bool:
    """Whether ``member`` is frozen now: after ``max_generations`` since its last freeze; or after
    ``min_generations`` once it wins at least ``freeze_win_rate`` against every player it is
    judged against (main exploiters: the current main agents; the others: every frozen player).
    A player never met counts 0.5, so it blocks the early freeze."""
    if member.since_freeze >= config.max_generations:
        return True
    if member.since_freeze < config.min_generations:
        return False
    if member.kind == MAIN_EXPLOITER:
        judged = [m.name for m in members if m.kind == MAIN]
    else:
        judged = [s.name for s in snapshots]
    return bool(judged) and min(payoff.win_rate(member.name, n) for n in judged) >= config.freeze_win_rate


def reset_after_freeze(member: Member, config: LeagueConfig, rng: np.random.Generator) -> bool:
    """Whether ``member``, just frozen, starts again from the seed network: main exploiters with
    probability ``main_exploiter_reset`` (1), league exploiters ``league_exploiter_reset`` (0.25),
    main agents never. Draws from ``rng`` only for a probability strictly between 0 and 1."""
    p = {MAIN: 0.0, MAIN_EXPLOITER: config.main_exploiter_reset, LEAGUE_EXPLOITER: config.league_exploiter_reset}[member.kind]
    if p <= 0 or p >= 1:
        return p >= 1
    return bool(rng.random() < p)
