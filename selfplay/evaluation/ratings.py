"""Ratings of many players from all their games at once (Bradley-Terry), on the Elo scale of
:mod:`selfplay.evaluation.elo` (a score ``s`` is ``400 log10(s / (1 - s))`` apart).

* :func:`fit_bradley_terry`: ratings fitted by maximum likelihood to all games at once, a draw
  counting as half a win and half a loss (not the Davidson draw model: one parameter per player,
  and two players' fitted difference is the Elo of their score, the prior's draws included).
* :func:`rating_intervals`: 95% intervals from the curvature of the likelihood.
* :class:`RatingTable`: match results accumulated over training, saved as JSON, refitted.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from .elo import EloError, Z95, elo_from_score

__all__ = ["RatingTable", "fit_bradley_terry", "rating_intervals"]

# ------------------------------------------------------------------------------ Bradley-Terry

ELO_PER_NAT = 400.0 / math.log(10.0)  # ratings are kept in natural units inside the fit
DEFAULT_PRIOR_GAMES = 2.0

Result = tuple  # (player a, player b, wins of a, draws, losses of a)


@dataclass(frozen=True)
class _Fit:
    players: tuple[str, ...]  # sorted: the order of the rows below
    theta: np.ndarray  # float64[P]: ratings in natural units, mean 0 per connected group
    information: np.ndarray  # float64[P, P]: minus the Hessian of the log-likelihood (a Laplacian)


def _pairs(
    results: Iterable[Result], prior_games: float
) -> tuple[tuple[str, ...], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Results summed per unordered pair: (players, i int64[K], j int64[K], score of i float64[K],
    games float64[K]), each pair with ``prior_games`` virtual draws added."""
    totals: dict[tuple[str, str], list[float]] = {}
    for k, result in enumerate(results):
        if len(result) != 5:
            raise EloError(f"result {k}: expected (player_a, player_b, wins, draws, losses), got {result!r}")
        a, b, wins, draws, losses = result
        a, b = str(a), str(b)
        counts = [float(wins), float(draws), float(losses)]
        if a == b:
            raise EloError(f"result {k}: {a!r} cannot play itself")
        if not all(math.isfinite(c) and c >= 0 for c in counts):
            raise EloError(f"result {k}: game counts must be finite and >= 0, got {counts}")
        if a > b:  # one orientation per pair, so the sums do not depend on the order of results
            a, b, counts = b, a, counts[::-1]
        total = totals.setdefault((a, b), [0.0, 0.0, 0.0])
        for c in range(3):
            total[c] += counts[c]
    totals = {k: v for k, v in totals.items() if sum(v) > 0}
    players = tuple(sorted({p for pair in totals for p in pair}))
    where = {p: n for n, p in enumerate(players)}
    keys = sorted(totals)
    i = np.array([where[a] for a, _ in keys], np.int64)
    j = np.array([where[b] for _, b in keys], np.int64)
    w, d, l = (np.array([totals[k][c] for k in keys], np.float64) for c in range(3))
    score = w + (d + prior_games) / 2.0
    games = w + d + l + prior_games
    return players, i, j, score, games


def _log_likelihood(theta: np.ndarray, i: np.ndarray, j: np.ndarray, score: np.ndarray, games: np.ndarray) -> float:
    diff = theta[i] - theta[j]
    # score log sigma(diff) + (games - score) log sigma(-diff), computed without overflow
    return float(np.sum(-score * np.logaddexp(0.0, -diff) - (games - score) * np.logaddexp(0.0, diff)))


def _fit(results: Iterable[Result], prior_games: float) -> _Fit:
    """Maximum likelihood by Newton's method (the log-likelihood is concave), with step halving."""
    if not (isinstance(prior_games, (int, float)) and prior_games > 0 and math.isfinite(prior_games)):
        raise EloError(f"prior_games must be > 0 (it keeps unbeaten players finite), got {prior_games!r}")
    players, i, j, score, games = _pairs(results, float(prior_games))
    P = len(players)
    theta = np.zeros(P)
    information = np.zeros((P, P))
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-(theta[i] - theta[j])))
        residual = score - games * p  # d loglik / d theta_i for each pair (minus that for theta_j)
        gradient = np.zeros(P)
        np.add.at(gradient, i, residual)
        np.add.at(gradient, j, -residual)
        weight = games * p * (1.0 - p)
        information = np.zeros((P, P))
        np.add.at(information, (i, i), weight)
        np.add.at(information, (j, j), weight)
        np.add.at(information, (i, j), -weight)
        np.add.at(information, (j, i), -weight)
        # The ratings are fixed up to a shift (per connected group of players): a tiny ridge
        # picks the step with no shift, as the gradient sums to 0 over each group.
        ridge = 1e-9 * max(1.0, float(np.trace(information)) / max(P, 1))
        step = np.linalg.solve(information + ridge * np.eye(P), gradient)
        current = _log_likelihood(theta, i, j, score, games)
        t = 1.0
        while t > 1e-6 and _log_likelihood(theta + t * step, i, j, score, games) < current - 1e-12 * abs(current):
            t /= 2.0
        theta = theta + t * step
        if np.max(np.abs(t * step), initial=0.0) < 1e-10:
            break
    return _Fit(players, theta - theta.mean() if P else theta, information)


def _groups(information: np.ndarray) -> np.ndarray:
    """int64[P]: a label per player, equal for players joined by a chain of games."""
    P = information.shape[0]
    label = np.arange(P)
    for start in range(P):
        if label[start] != start:
            continue
        stack = [start]
        while stack:
            k = stack.pop()
            for m in np.flatnonzero(information[k] < 0):
                if label[m] != start:
                    label[m] = start
                    stack.append(m)
    return label


def _anchored(fit: _Fit, anchor: str | None, anchor_rating: float) -> np.ndarray:
    """Elo ratings: the anchor's group shifted to put the anchor at ``anchor_rating``, every
    other group of connected players centred on it."""
    elo = fit.theta * ELO_PER_NAT
    group = _groups(fit.information)
    home = group[fit.players.index(anchor)] if anchor is not None and anchor in fit.players else -1
    for g in np.unique(group):
        members = group == g
        reference = elo[fit.players.index(anchor)] if g == home else elo[members].mean()
        elo[members] += anchor_rating - reference
    return elo


def fit_bradley_terry(
    results: Iterable[Result],
    anchor: str | None = None,
    anchor_rating: float = 0.0,
    prior_games: float = DEFAULT_PRIOR_GAMES,
) -> dict[str, float]:
    """Elo ratings fitted to all ``results`` at once by maximum likelihood (Bradley-Terry).

    ``results``: ``(player_a, player_b, wins_a, draws, losses_a)`` tuples, any number per pair
    and in any order (the fit depends only on the totals per pair). Model: ``a`` scores
    ``1 / (1 + 10^((r_b - r_a) / 400))`` against ``b``, a draw counting half a win and half a
    loss (so for two players the fit is :func:`elo_from_score` of the score, shrunk by the
    prior). Prior: ``prior_games`` virtual draws between every two players who met (as in
    BayesElo), which keeps an unbeaten player's rating finite and barely moves well-measured
    ones. Ratings are anchored so that ``anchor`` has ``anchor_rating``; without an anchor (or
    if it never played) their mean is ``anchor_rating``. Players joined to the anchor by no chain
    of games cannot be compared with it; each such group is centred on ``anchor_rating``.
    Returns ``{player: rating}`` in sorted player order.
    """
    fit = _fit(results, prior_games)
    return dict(zip(fit.players, (float(r) for r in _anchored(fit, anchor, anchor_rating))))


def rating_intervals(
    results: Iterable[Result],
    anchor: str | None = None,
    anchor_rating: float = 0.0,
    prior_games: float = DEFAULT_PRIOR_GAMES,
    z: float = Z95,
) -> dict[str, tuple[float, float]]:
    """``{player: (lo, hi)}``: 95% intervals of :func:`fit_bradley_terry`'s ratings from the
    curvature of the log-likelihood at its maximum (normal approximation; the prior's virtual
    games count as information). They measure each rating relative to the anchor, whose own
    interval has zero width; without an anchor, relative to the mean of all."""
    results = list(results)
    fit = _fit(results, prior_games)
    elo = _anchored(fit, anchor, anchor_rating)
    P = len(fit.players)
    variance = np.zeros(P)
    if anchor is not None and anchor in fit.players:
        keep = [k for k, p in enumerate(fit.players) if p != anchor]
        if keep:
            covariance = np.linalg.pinv(fit.information[np.ix_(keep, keep)], hermitian=True)
            variance[keep] = np.diag(covariance)
    elif P:
        variance = np.diag(np.linalg.pinv(fit.information, hermitian=True))
    half = z * np.sqrt(np.maximum(variance, 0.0)) * ELO_PER_NAT
    return {p: (float(elo[k] - half[k]), float(elo[k] + half[k])) for k, p in enumerate(fit.players)}


# ------------------------------------------------------------------------------ rating table

TABLE_FORMAT = "selfplay-ratings"
TABLE_VERSION = 1


class RatingTable:
    """Match results gathered over a training run, and ratings fitted to all of them.

    Each match is kept as it was added, ``{"a", "b", "wins", "draws", "losses", "meta"}``
    (``meta``: anything JSON, e.g. the training step). :meth:`ratings` refits Bradley-Terry to
    every game so far; :meth:`payoff` gives the score of each player against each other.
    :meth:`save` writes JSON atomically (``selfplay.model.checkpoint.atomic_write``).
    """

    def __init__(
        self,
        anchor: str | None = "random",
        anchor_rating: float = 0.0,
        prior_games: float = DEFAULT_PRIOR_GAMES,
        path: str | os.PathLike | None = None,
    ) -> None:
        if not (prior_games > 0):
            raise EloError(f"prior_games must be > 0, got {prior_games!r}")
        self.anchor = anchor
        self.anchor_rating = float(anchor_rating)
        self.prior_games = float(prior_games)
        self.path = Path(path) if path is not None else None
        self.matches: list[dict[str, Any]] = []
        self._cache: dict[str, float] | None = None

    # ----------------------------------------------------------------- adding games
    def add(
        self, a: Any, b: str | None = None, wins: float = 0, draws: float = 0, losses: float = 0, **meta: Any
    ) -> None:
        """Record a match: ``add(match_result, step=...)`` (a :class:`selfplay.evaluation.matches.MatchResult`,
        named by its agents) or ``add("gen3", "random", wins, draws, losses, step=...)``."""
        if b is None:
            result = a
            a, b = result.agent_a, result.agent_b
            wins, draws, losses = result.wins, result.draws, result.losses
        _pairs([(a, b, wins, draws, losses)], 0.0)  # validates
        self.matches.append(
            {
                "a": str(a),
                "b": str(b),
                "wins": float(wins),
                "draws": float(draws),
                "losses": float(losses),
                "meta": dict(meta),
            }
        )
        self._cache = None

    @property
    def results(self) -> list[Result]:
        """Every match as ``(a, b, wins, draws, losses)``."""
        return [(m["a"], m["b"], m["wins"], m["draws"], m["losses"]) for m in self.matches]

    @property
    def players(self) -> list[str]:
        """Every player, in order of first appearance."""
        seen: dict[str, None] = {}
        for m in self.matches:
            seen.setdefault(m["a"])
            seen.setdefault(m["b"])
        return list(seen)

    # ----------------------------------------------------------------- fitting
    def ratings(self) -> dict[str, float]:
        """``{player: Elo}`` fitted to all games (cached until the next :meth:`add`), in
        :attr:`players` order."""
        if self._cache is None:
            fitted = fit_bradley_terry(self.results, self.anchor, self.anchor_rating, self.prior_games)
            self._cache = {p: fitted[p] for p in self.players if p in fitted}
        return dict(self._cache)

    def intervals(self) -> dict[str, tuple[float, float]]:
        """``{player: (lo, hi)}``: 95% intervals (see :func:`rating_intervals`)."""
        found = rating_intervals(self.results, self.anchor, self.anchor_rating, self.prior_games)
        return {p: found[p] for p in self.players if p in found}

    def counts(self, players: list[str] | None = None) -> tuple[list[str], np.ndarray]:
        """(players, float64[P, P, 3]): wins, draws and losses of row against column."""
        players = list(players or self.players)
        where = {p: n for n, p in enumerate(players)}
        out = np.zeros((len(players), len(players), 3))
        for m in self.matches:
            if m["a"] in where and m["b"] in where:
                ia, ib = where[m["a"]], where[m["b"]]
                wdl = np.array([m["wins"], m["draws"], m["losses"]])
                out[ia, ib] += wdl
                out[ib, ia] += wdl[::-1]
        return players, out

    def payoff(self, players: list[str] | None = None) -> np.ndarray:
        """float64[P, P]: score (wins + draws / 2) / games of row against column, over all their
        games; NaN where they never met (and on the diagonal). Rows in ``players`` order
        (default :attr:`players`)."""
        _, counts = self.counts(players)
        games = counts.sum(axis=2)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(games > 0, (counts[..., 0] + counts[..., 1] / 2) / games, np.nan)

    # ----------------------------------------------------------------- files
    def to_dict(self) -> dict[str, Any]:
        ratings = self.ratings()
        return {
            "format": TABLE_FORMAT,
            "format_version": TABLE_VERSION,
            "anchor": self.anchor,
            "anchor_rating": self.anchor_rating,
            "prior_games": self.prior_games,
            "matches": self.matches,
            "ratings": ratings,  # for readers; recomputed from the matches on load
        }

    def save(self, path: str | os.PathLike | None = None) -> Path:
        """Write the table as JSON to ``path`` (default: the path it was made or loaded with),
        atomically: a reader sees the old file or the new one, never part of one."""
        from ..model.checkpoint import atomic_write

        target = Path(path) if path is not None else self.path
        if target is None:
            raise EloError("RatingTable.save: no path given and the table has none")
        with atomic_write(target) as f:
            f.write(json.dumps(self.to_dict(), indent=1).encode())
        self.path = target
        return target

    @classmethod
    def load(cls, path: str | os.PathLike) -> "RatingTable":
        """The table saved at ``path``; a one-line ``ValueError`` if it is not one."""
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except OSError as e:
            raise EloError(f"{path}: cannot read rating table ({e.strerror or e})") from None
        except json.JSONDecodeError as e:
            raise EloError(f"{path}: not a rating table (bad JSON: {e.msg} at line {e.lineno})") from None
        if not isinstance(data, Mapping) or data.get("format") != TABLE_FORMAT:
            raise EloError(f"{path}: not a {TABLE_FORMAT} file")
        if data.get("format_version") != TABLE_VERSION:
            found = data.get("format_version")
            raise EloError(f"{path}: rating table version {found!r}, this code reads {TABLE_VERSION}")
        table = cls(data["anchor"], data["anchor_rating"], data["prior_games"], path=path)
        try:
            for m in data["matches"]:
                table.add(m["a"], m["b"], m["wins"], m["draws"], m["losses"], **m.get("meta", {}))
        except (KeyError, TypeError, ValueError) as e:
            raise EloError(f"{path}: bad match record ({type(e).__name__}: {e})") from None
        return table

    @classmethod
    def open(cls, path: str | os.PathLike, **defaults: Any) -> "RatingTable":
        """The table at ``path`` if the file exists, else a new empty one (``defaults``: the
        constructor's arguments) that :meth:`save` will write there."""
        path = Path(path)
        return cls.load(path) if path.exists() else cls(**defaults, path=path)
