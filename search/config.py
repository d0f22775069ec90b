"""Search settings: one typed, frozen, validated dataclass.

Every field carries a help string (``metadata["help"]``) so the CLI can turn the dataclass into
flags. Bad values fail here, at construction, with one line naming the field, never later inside
a numba kernel. Variants come from ``dataclasses.replace(config, field=value)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

__all__ = ["SearchConfig", "SearchError"]


class SearchError(ValueError):
    """Bad input to the search (configuration, states, actions, evaluator output): one line."""


def _f(default, help: str):
    return field(default=default, metadata={"help": help})


ROOT_POLICIES = ("puct", "gumbel")
FPU_MODES = ("absolute", "reduction")


@dataclass(frozen=True)
class SearchConfig:
    """How one search runs. Values are always from the point of view of the player to move."""

    num_simulations: int = _f(
        800, "simulations per search call (the most any game gets; a call may give some fewer)"
    )
    root_policy: str = _f(
        "puct", "'puct' (AlphaZero: PUCT at the root, visit counts as the policy target) or "
        "'gumbel' (Gumbel AlphaZero: sequential halving at the root, completed-Q policy target)"
    )
    c_init: float = _f(1.25, "PUCT exploration c(s) = log((1 + N + c_base) / c_base) + c_init")
    c_base: float = _f(19652.0, "PUCT c_base (see c_init); large values keep c(s) near c_init")
    fpu: str = _f(
        "absolute", "first-play urgency, the Q of an unvisited action: 'absolute' uses fpu_value; "
        "'reduction' uses the parent's Q minus fpu_value * sqrt(prior mass already visited)"
    )
    fpu_value: float = _f(0.0, "the FPU constant (see fpu); AlphaZero is 'absolute' with 0")
    dirichlet_alpha: float = _f(0.3, "Dirichlet noise concentration at the root (puct only)")
    dirichlet_fraction: float = _f(
        0.0, "weight of Dirichlet noise in the root prior (0: none; AlphaZero self-play uses 0.25)"
    )
    temperature: float = _f(
        1.0, "move-choice temperature during the first temperature_moves moves: puct samples visit "
        "counts, gumbel its improved policy (the policy target), each raised to 1 / temperature"
    )
    temperature_moves: int = _f(
        0, "moves (by move number) played at `temperature`; later moves play the most visited "
        "action (puct) or the sequential-halving winner (gumbel); 0: always those"
    )
    solver: bool = _f(
        False, "MCTS-Solver: exact results found at terminal nodes propagate up the tree and "
        "proven moves are played at once"
    )
    reuse_tree: bool = _f(True, "advance() keeps the chosen child's subtree and its statistics")
    capacity: int = _f(
        0, "nodes per tree (0: num_simulations + 1, doubled with reuse_tree); a reused subtree "
        "keeps at most capacity - num_simulations - 1 nodes, breadth first"
    )
    leaves_per_step: int = _f(
        1, "leaves each game sends to one evaluator call, spread by virtual loss (native "
        "evaluators always take 1)"
    )
    virtual_loss: float = _f(
        1.0, "value subtracted per pending visit while leaves wait for the evaluator"
    )
    gumbel_considered: int = _f(16, "Gumbel: actions sampled without replacement at the root (m)")
    gumbel_scale: float = _f(1.0, "Gumbel: noise scale (0: deterministic, for evaluation)")
    gumbel_c_visit: float = _f(50.0, "Gumbel: c_visit in sigma(q) = (c_visit + max N) c_scale q")
    gumbel_c_scale: float = _f(0.1, "Gumbel: c_scale (see gumbel_c_visit)")
    gumbel_rescale: bool = _f(
        True, "Gumbel: min-max rescale the completed Q of a node's actions to [0, 1] before "
        "sigma (mctx's rescale_values; amplifies tiny Q differences, such as a drawish game's "
        "value noise, to the full range); False maps the value's bounds [-1, 1] to [0, 1] instead"
    )

    def __post_init__(self) -> None:
        def need(ok: bool, message: str) -> None:
            if not ok:
                raise SearchError(f"SearchConfig: {message}")

        for f in fields(self):  # a typo'd type (e.g. a string from a CLI) fails here, by name
            value = getattr(self, f.name)
            kind = {"int": int, "float": (int, float), "bool": bool, "str": str}[f.type]
            need(
                isinstance(value, kind) and (f.type == "bool" or not isinstance(value, bool)),
                f"{f.name} must be {f.type}, got {value!r}",
            )
            if f.type == "float":  # inf and NaN pass most range checks, and mean nothing here
                need(math.isfinite(value), f"{f.name} must be finite, got {value!r}")
        need(self.num_simulations >= 1, f"num_simulations must be >= 1, got {self.num_simulations}")
        need(self.root_policy in ROOT_POLICIES, f"root_policy must be one of {ROOT_POLICIES}, got {self.root_policy!r}")
        need(self.c_init >= 0, f"c_init must be >= 0, got {self.c_init}")
        need(self.c_base > 0, f"c_base must be > 0, got {self.c_base}")
        need(self.fpu in FPU_MODES, f"fpu must be one of {FPU_MODES}, got {self.fpu!r}")
        need(self.dirichlet_alpha > 0, f"dirichlet_alpha must be > 0, got {self.dirichlet_alpha}")
        need(
            0.0 <= self.dirichlet_fraction <= 1.0,
            f"dirichlet_fraction must be in [0, 1], got {self.dirichlet_fraction}",
        )
        need(
            not (self.root_policy == "gumbel" and self.dirichlet_fraction > 0),
            "Dirichlet noise is for root_policy='puct'; Gumbel explores through gumbel_scale",
        )
        need(self.temperature >= 0, f"temperature must be >= 0, got {self.temperature}")
        need(self.temperature_moves >= 0, f"temperature_moves must be >= 0, got {self.temperature_moves}")
        need(
            self.capacity == 0 or self.capacity >= self.num_simulations + 1,
            f"capacity {self.capacity} cannot hold the root and {self.num_simulations} simulations; "
            f"use >= {self.num_simulations + 1} (or 0 for automatic)",
        )
        need(self.leaves_per_step >= 1, f"leaves_per_step must be >= 1, got {self.leaves_per_step}")
        need(self.virtual_loss >= 0, f"virtual_loss must be >= 0, got {self.virtual_loss}")
        need(self.gumbel_considered >= 1, f"gumbel_considered must be >= 1, got {self.gumbel_considered}")
        need(self.gumbel_scale >= 0, f"gumbel_scale must be >= 0, got {self.gumbel_scale}")
        need(self.gumbel_c_visit > 0, f"gumbel_c_visit must be > 0, got {self.gumbel_c_visit}")
        need(self.gumbel_c_scale > 0, f"gumbel_c_scale must be > 0, got {self.gumbel_c_scale}")

    @property
    def node_capacity(self) -> int:
        """Nodes allocated per tree."""
        if self.capacity:
            return self.capacity
        return (2 if self.reuse_tree else 1) * self.num_simulations + 1

    @property
    def gumbel(self) -> bool:
        return self.root_policy == "gumbel"
