"""A real Ray cluster of separate processes on this machine, for tests: a head node and worker
nodes, each its own ``ray start --block`` with its own temp dir and free ports, torn down by
killing exactly their process trees (never ``ray stop``, which would end every Ray instance of the
machine: another test's, or a user's)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RAY = str(Path(sys.executable).parent / "ray")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _children() -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            out.setdefault(ppid, []).append(int(entry))
    return out


def process_tree(root: int) -> list[int]:
    """``root`` and every process below it (Ray's workers start their own sessions, so a
    process group does not hold them; their parent, the raylet, does)."""
    children, todo, seen = _children(), [root], []
    while todo:
        pid = todo.pop()
        seen.append(pid)
        todo += children.get(pid, [])
    return seen


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def kill_tree(root: int) -> list[int]:
    pids = process_tree(root)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return pids


class Node:
    """One ``ray start --block`` process and everything it starts."""

    def __init__(self, args: list[str], temp_dir: Path, env: dict) -> None:
        self.temp_dir = temp_dir
        self.log = open(temp_dir.with_suffix(".log"), "w")
        self.process = subprocess.Popen([RAY, "start", "--block", "--disable-usage-stats", "--temp-dir", str(temp_dir), *args],
                                        stdout=self.log, stderr=subprocess.STDOUT, env=env, start_new_session=True)

    def wait_started(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while "Ray runtime started" not in Path(self.log.name).read_text():
            assert self.process.poll() is None, Path(self.log.name).read_text()[-3000:]
            assert time.monotonic() < deadline, "ray start did not finish"
            time.sleep(0.2)

    def raylet(self) -> int | None:
        for pid in process_tree(self.process.pid):
            if "/raylet/raylet " in command_line(pid):
                return pid
        return None

    def actor_processes(self, class_name: str) -> list[int]:
        """Worker processes of this node running actors of ``class_name`` (Ray titles them ray::CLASS)."""
        return [pid for pid in process_tree(self.process.pid) if command_line(pid).startswith(f"ray::{class_name}")]

    def kill(self) -> list[int]:
        """SIGKILL the whole node at once: raylet, object store, agents and workers."""
        return kill_tree(self.process.pid)


class Cluster:
    """``Cluster(tmp)``, then :meth:`add_head` and :meth:`add_worker`; :meth:`close` always."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="sp-ray-", dir="/tmp"))  # Unix sockets: keep paths short
        self.env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
        self.nodes: list[Node] = []
        self.address = ""

    def add_head(self, num_cpus: int, resources: dict | None = None) -> Node:
        port = free_port()
        args = ["--head", "--port", str(port), "--num-cpus", str(num_cpus), "--include-dashboard", "false",
                "--dashboard-port", str(free_port()),
                "--node-ip-address", "127.0.0.1"]
        if resources:
            args += ["--resources", json.dumps(resources)]
        node = Node(args, self.root / "head", self.env)
        self.nodes.append(node)
        node.wait_started()
        self.address = f"127.0.0.1:{port}"
        return node

    def add_worker(self, num_cpus: int, resources: dict | None = None) -> Node:
        name = f"worker{len(self.nodes)}"
        args = ["--address", self.address, "--num-cpus", str(num_cpus), "--node-ip-address", "127.0.0.1",
                "--dashboard-agent-listen-port", str(free_port())]
        if resources:
            args += ["--resources", json.dumps(resources)]
        node = Node(args, self.root / name, self.env)
        self.nodes.append(node)
        node.wait_started()
        return node

    def close(self) -> None:
        """Kill every node's process tree, then anything still naming our temp dir."""
        for node in self.nodes:
            node.kill()
            try:
                node.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
            node.log.close()
        root = str(self.root)
        for entry in os.listdir("/proc"):
            if entry.isdigit() and root in command_line(int(entry)):
                kill_tree(int(entry))
        shutil.rmtree(self.root, ignore_errors=True)
