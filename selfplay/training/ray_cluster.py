"""Joining a Ray cluster for ``--backend ray`` (``cluster.backend``): importing Ray, checking that
a cluster answers before a run writes anything, connecting and disconnecting.

Ray is imported only here, and only when a Ray backend is asked for: a missing Ray is one line
naming ``pip install selfplay[ray]`` (:class:`ClusterError`). This module never changes the
environment of the process: what ``ray.init`` writes into ``os.environ`` is put back.
"""

from __future__ import annotations

import os
import socket
from typing import Any

from ..config import ClusterConfig

__all__ = ["ClusterError", "connect", "disconnect", "import_ray", "require_ray"]

INSTALL_HINT = "pip install selfplay[ray]"


class ClusterError(ValueError):
    """The Ray backend cannot start: Ray missing, a cluster unreachable. One line for the user."""


def import_ray():
    """The ``ray`` module, or :class:`ClusterError` naming the install command. (Importing ray
    sets RAY_CLIENT_MODE in ``os.environ``; that is put back.)"""
    before = dict(os.environ)
    try:
        import ray
    except ImportError:
        raise ClusterError(f"--backend ray needs Ray, which is not installed here: {INSTALL_HINT}") from None
    finally:
        _restore_environment(before)
    return ray


def require_ray(cluster: ClusterConfig) -> None:
    """Before a run writes anything: Ray is installed and ``cluster.address`` answers (one line
    otherwise). A plain ``HOST:PORT`` is tried over TCP for 5 seconds, rather than Ray's minute
    of retries."""
    if cluster.backend != "ray":
        return
    import_ray()
    address = cluster.address
    if not address or address == "auto" or "://" in address:
        return
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ClusterError(f"--address {address!r}: expected HOST:PORT (as 'ray start --head' prints it), or 'auto'")
    try:
        socket.create_connection((host, int(port)), timeout=5.0).close()
    except OSError as e:
        raise ClusterError(f"cannot reach a Ray cluster at {address}: {e.strerror or e} (is 'ray start --head' running "
                           f"there, and the port open?)") from None


def connect(address: str = "", num_cpus: int | None = None) -> bool:
    """Join the Ray cluster at ``address`` ('' starts a local instance, or joins RAY_ADDRESS);
    True when this call initialized Ray (so its caller shuts it down), False when this process
    was connected already. ``os.environ`` is left as it was."""
    ray = import_ray()
    if ray.is_initialized():
        return False
    before = dict(os.environ)
    options: dict[str, Any] = {"log_to_driver": False}
    if address:
        options["address"] = address
    elif "RAY_ADDRESS" not in os.environ:
        options.update(include_dashboard=False, num_cpus=num_cpus)
    try:
        ray.init(**options)
    except (ConnectionError, RuntimeError, ValueError, TimeoutError) as e:
        where = f"at {address}" if address else "(a new local instance)"
        raise ClusterError(f"cannot connect to Ray {where}: {' '.join(str(e).split())[:300]}") from None
    finally:
        _restore_environment(before)
    return True


def disconnect() -> None:
    ray = import_ray()
    before = dict(os.environ)
    ray.shutdown()
    _restore_environment(before)


def _restore_environment(before: dict) -> None:
    """Undo what Ray wrote into ``os.environ`` (RAY_USAGE_STATS_ENABLED, PYTHONBREAKPOINT, ...)."""
    for key in set(os.environ) - set(before):
        del os.environ[key]
    for key, value in before.items():
        if os.environ.get(key) != value:
            os.environ[key] = value
