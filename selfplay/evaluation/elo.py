"""Elo from one match's results: the score, its interval, the SPRT.

Conventions. A score is ``(wins + draws / 2) / games`` in [0, 1], from the first player's point
of view; the logistic Elo difference of a score ``s`` is ``400 log10(s / (1 - s))`` (76% is about
+200). All ratings are on that scale.

One match
---------
* :func:`elo_from_score`: the Elo difference of a score, finite at 0% and 100% (read as half a
  game short of them).
* :func:`score_interval` / :func:`elo_interval`: a 95% interval that uses the trinomial variance
  (draws shrink it) with Agresti-Coull pseudo-games, so it is never of zero width and stays
  sensible for small or one-sided samples. Simulated coverage: 95-96% from 20 games at even
  strength to 100 games at +600 Elo, with 0-50% draws (a property of the method, not a run).
* :func:`wilson_interval`: the Wilson score interval of a rate (errors among positions, false
  resignations among checks), vectorized.
* :class:`SPRT` / :func:`sprt_llr`: the sequential probability ratio test of H0 "Elo = elo0"
  against H1 "Elo = elo1" as a generalized SPRT on the trinomial (win/draw/loss) distribution,
  each hypothesis' probabilities fitted by maximum likelihood under its expected score.
  Simulated SPRT(0, 50), alpha = beta = 5%, checked every 20 games, 30% draws: 2% wrong
  decisions at either true Elo, about 220 games on average.

Many players' ratings (Bradley-Terry, the rating table) are in :mod:`selfplay.evaluation.ratings`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "SPRT",
    "EloError",
    "elo_from_score",
    "elo_interval",
    "score_from_elo",
    "score_interval",
    "sprt_llr",
    "wilson_interval",
]

Z95 = 1.959963984540054  # two-sided 95% normal quantile


class EloError(ValueError):
    """Bad input to the statistics (a score, SPRT bounds, results, a rating table file): one line."""


def score_from_elo(elo: float) -> float:
    """Expected score of a player ``elo`` points stronger: ``1 / (1 + 10^(-elo/400))``."""
    return 1.0 / (1.0 + 10.0 ** (-float(elo) / 400.0))


def _elo(score: float, games: float) -> float:
    edge = 0.5 / max(games, 1.0)
    s = min(max(score, edge), 1.0 - edge)
    return 400.0 * math.log10(s / (1.0 - s))


def elo_from_score(score: float, games: float) -> float:
    """Elo difference of a ``score`` over ``games`` games. A score of 0% or 100% is read as half
    a game short of it (``1 / (2 games)`` from the edge), so the estimate stays finite and grows
    with the number of games won."""
    if not 0.0 <= score <= 1.0:
        raise EloError(f"score must lie in [0, 1], got {score}")
    return _elo(score, games)


def score_interval(wins: float, draws: float, losses: float, z: float = Z95) -> tuple[float, float]:
    """(lo, hi): an interval for the expected score (default 95%).

    Agresti-Coull for a trinomial: add ``z^2 / 2`` wins and as many losses, then take the normal
    interval with the per-game variance ``w (1 - s)^2 + d (1/2 - s)^2 + l s^2`` of the augmented
    counts. Draws lower the variance; a perfect or empty record still gets a real interval.
    Clipped to [0, 1].
    """
    pseudo = z * z / 2.0
    w, d, l = wins + pseudo, float(draws), losses + pseudo
    n = w + d + l
    s = (w + d / 2.0) / n
    variance = (w * (1.0 - s) ** 2 + d * (0.5 - s) ** 2 + l * s * s) / n
    half = z * math.sqrt(variance / n)
    return max(s - half, 0.0), min(s + half, 1.0)


def elo_interval(wins: float, draws: float, losses: float, z: float = Z95) -> tuple[float, float]:
    """(lo, hi): the :func:`score_interval` in Elo. An open end at 0% or 100% is reported at a
    quarter game from the edge (finite, and beyond :func:`elo_from_score`'s half game)."""
    games = max(wins + draws + losses, 1.0)
    lo, hi = score_interval(wins, draws, losses, z)
    edge = 0.25 / games
    lo, hi = (min(max(p, edge), 1.0 - edge) for p in (lo, hi))
    return 400.0 * math.log10(lo / (1.0 - lo)), 400.0 * math.log10(hi / (1.0 - hi))


# ------------------------------------------------------------------------------ SPRT


def wilson_interval(k: Any, n: Any, z: float = Z95) -> tuple[np.ndarray, np.ndarray]:
    """``(low, high)``: the Wilson score interval of the rate ``k / n`` (arrays broadcast; with
    ``n == 0`` the interval is [0, 1]). ``z = 1.645`` gives the one-sided 95% bound in ``high``."""
    k, n = np.asarray(k, np.float64), np.asarray(n, np.float64)
    safe = np.maximum(n, 1.0)
    p = k / safe
    centre = (p + z * z / (2 * safe)) / (1 + z * z / safe)
    half = z * np.sqrt(p * (1 - p) / safe + z * z / (4 * safe * safe)) / (1 + z * z / safe)
    low = np.where(n > 0, np.maximum(0.0, centre - half), 0.0)
    high = np.where(n > 0, np.minimum(1.0, centre + half), 1.0)
    return low, high


def _constrained_mle(frequencies: np.ndarray, points: np.ndarray, score: float) -> np.ndarray:
    """The outcome probabilities closest (max likelihood) to ``frequencies`` whose expected
    score is ``score``: ``p_j = f_j / (1 + lam (a_j - score))`` with ``lam`` such that
    ``sum p_j (a_j - score) = 0``, found by bisection (the sum falls as ``lam`` grows)."""
    shift = points - score
    lo, hi = -1.0 / shift.max(), -1.0 / shift.min()  # 1 + lam * shift > 0 for every outcome
    for _ in range(200):
        lam = 0.5 * (lo + hi)
        if np.sum(frequencies * shift / (1.0 + lam * shift)) > 0.0:
            lo = lam
        else:
            hi = lam
    p = frequencies / (1.0 + 0.5 * (lo + hi) * shift)
    return p / p.sum()


def sprt_llr(wins: float, draws: float, losses: float, elo0: float, elo1: float) -> float:
    """Log-likelihood ratio of H1 (Elo ``elo1``) over H0 (Elo ``elo0``) after these games: the
    generalized SPRT on the trinomial, each hypothesis' win/draw/loss probabilities fitted by
    maximum likelihood under its expected score. Empty categories get a count of 1e-3 so that,
    e.g., five straight wins give ``~5 log(s1 / s0)``, not infinity."""
    counts = np.array([losses, draws, wins], dtype=np.float64)
    n = counts.sum()
    if n == 0:
        return 0.0
    counts = np.maximum(counts, 1e-3)
    frequencies = counts / counts.sum()
    points = np.array([0.0, 0.5, 1.0])
    p0 = _constrained_mle(frequencies, points, score_from_elo(elo0))
    p1 = _constrained_mle(frequencies, points, score_from_elo(elo1))
    return float(n * np.sum(frequencies * np.log(p1 / p0)))


@dataclass(frozen=True)
class SPRT:
    """Sequential test of H0 "A is ``elo0`` Elo stronger than B" against H1 "``elo1``"
    (``elo0 < elo1``) with false-positive rate ``alpha`` and false-negative rate ``beta``."""

    elo0: float = 0.0
    elo1: float = 50.0
    alpha: float = 0.05
    beta: float = 0.05

    def __post_init__(self) -> None:
        if not (math.isfinite(self.elo0) and math.isfinite(self.elo1)):
            raise EloError(f"SPRT needs finite Elo bounds, got elo0={self.elo0}, elo1={self.elo1}")
        if not self.elo0 < self.elo1:
            raise EloError(f"SPRT needs elo0 < elo1, got elo0={self.elo0}, elo1={self.elo1}")
        if not (0 < self.alpha < 0.5 and 0 < self.beta < 0.5):
            raise EloError(f"SPRT alpha and beta must lie in (0, 0.5), got {self.alpha}, {self.beta}")

    @classmethod
    def of(cls, spec) -> "SPRT | None":
        """``None``, an SPRT, or a tuple ``(elo0, elo1)`` / ``(elo0, elo1, alpha, beta)``."""
        if spec is None or isinstance(spec, SPRT):
            return spec
        values = tuple(float(v) for v in spec)
        if len(values) not in (2, 4):
            raise EloError(f"sprt must be (elo0, elo1) or (elo0, elo1, alpha, beta), got {spec!r}")
        return cls(*values)

    @property
    def bounds(self) -> tuple[float, float]:
        """(lower, upper) LLR bounds: accept H0 below, H1 above (Wald)."""
        return math.log(self.beta / (1 - self.alpha)), math.log((1 - self.beta) / self.alpha)

    def decide(self, wins: float, draws: float, losses: float) -> tuple[float, str | None]:
        """(LLR, "H1" | "H0" | None) after these games."""
        llr = sprt_llr(wins, draws, losses, self.elo0, self.elo1)
        lower, upper = self.bounds
        return llr, "H1" if llr >= upper else "H0" if llr <= lower else None
