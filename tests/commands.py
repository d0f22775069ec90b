"""Running ``selfplay`` commands from tests.

A command's own process (``python -m selfplay ...``) spends 3-5 s of CPU importing torch, numba's
cached kernels and matplotlib before it does anything, so tests run a command in their own
process where the process is not what they test (:func:`run_here`). Kills, resumes, actor
processes, the environment a command sets before torch loads, installed plugins and streamed
stdin keep real processes.
"""

from __future__ import annotations

import contextlib
import io
import subprocess


def run_here(argv: list[str]) -> subprocess.CompletedProcess:
    """``selfplay ARGV`` run by ``selfplay.tools.cli.main`` in this process: its exit code and
    what it printed to stdout and stderr, as ``subprocess.run(..., capture_output=True,
    text=True)`` returns them."""
    from selfplay.tools.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return subprocess.CompletedProcess(list(argv), code, out.getvalue(), err.getvalue())
