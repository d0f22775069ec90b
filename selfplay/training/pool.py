"""Which actors a run gets, chosen once from its config: one actor in this process, actor
processes, processes that stream (for overlapped learning, or sharing one inference server), or
Ray actors on a cluster. Every kind is a :class:`~selfplay.training.messages.Actors`."""

from __future__ import annotations

from typing import Any, Callable

from .messages import Actors, ActorSpec
from .processes import ActorPool, LocalActors

__all__ = ["CUDA_ACTORS", "actor_count", "actors_label", "learner_threads", "make_actors"]

# Actor processes that ``num_actors -1`` starts on CUDA: each holds a CUDA context (about half a
# gigabyte), and more of them than this made no more positions/s on a GPU (docs/gpu.md).
CUDA_ACTORS = 8


def actor_count(config: Any, device: str) -> int:
    """Actor processes for a run of ``config`` (a TrainConfig) learning on ``device`` (0: one
    actor in this process); with Ray, ``selfplay.num_actors`` as given (-1: the pool counts the
    cluster's CPUs).

    On CUDA, -1 starts one actor per core up to :data:`CUDA_ACTORS`, each evaluating on the GPU:
    each actor's tree search runs on one core (docs/gpu.md, "On a GPU")."""
    if config.cluster.backend == "ray":
        return config.selfplay.num_actors
    if device == "cuda" and config.selfplay.num_actors == -1:
        return min(config.selfplay.actors, CUDA_ACTORS)
    return config.selfplay.actors


def learner_threads(config: Any, cores: int) -> int:
    """Torch threads for learning with ``learner.threads`` 0 (a TrainConfig ``config`` on a
    machine of ``cores``): one per core, or, learning beside local actor processes
    (``cluster.overlap``), one per core they leave free and at least one; a thread more would
    only take turns with an actor, and torch's threads wait for their slowest."""
    if config.cluster.overlap and config.cluster.backend == "local":
        return max(1, cores - max(config.selfplay.actors, 1))
    return cores


def actors_label(cluster: Any, count: int) -> str:
    """What the actors are, for the log: "actor process", "Ray actors", ... (``count`` of them)."""
    kind = ("Ray actor", "Ray actors") if cluster.backend == "ray" else ("actor process", "actor processes")
    return kind[count != 1]


def make_actors(spec: ActorSpec, count: int, cluster: Any = None, log: Callable[[str], None] | None = None) -> Actors:
    """The actors of a run: ``count`` actor processes, or one actor in this process when ``count``
    is 0; with ``cluster.backend == "ray"`` (a :class:`selfplay.config.ClusterConfig`), ``count``
    Ray actors (-1: one per cluster CPU), :class:`selfplay.training.ray_actors.RayActors`; with
    ``cluster.overlap`` or one inference server (``cluster.inference``), ``count`` (at least one)
    :class:`selfplay.training.streaming.StreamingActors`."""
    if cluster is not None and cluster.backend == "ray":
        from .ray_actors import RayActors

        return RayActors(spec, count, cluster, log=log)
    if cluster is not None:  # a stream for overlapped learning, or one inference server for every actor
        from .streaming import StreamingActors, serves_locally

        serve = serves_locally(cluster, spec.device)
        if cluster.overlap or serve:
            from .inference_backends import ServerOptions

            return StreamingActors(spec, max(count, 1), serve=serve, options=ServerOptions(device=spec.device),
                                   chunk_seconds=cluster.chunk_seconds, log=log)
    return LocalActors(spec) if count == 0 else ActorPool(spec, count)
