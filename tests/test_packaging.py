"""The package as a fresh clone builds it: no warning on the way (``make venv`` printed screens of
setuptools warnings, one per data folder not declared a package, before anything else), and a
wheel holding every file of ours, each shipped brain among them.

Built offline, without build isolation, from a copy of the tracked files of the packages (building
writes build/ and an .egg-info beside the sources).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("games", "search", "export", "selfplay")
BUILD_FILES = ("pyproject.toml", "README.md")  # the project's metadata: its readme is the description
#: what a build may print that is not the build's own (nothing here names a warning)
BUILD_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS" and not k.startswith("PIP_")}


def tracked_files() -> list[str]:
    """The packages' files a fresh clone has (not a checkout's caches, runs or half-written brains)."""
    listed = subprocess.run(["git", "ls-files", "-z", *PACKAGES], cwd=ROOT, capture_output=True, text=True)
    if listed.returncode != 0:
        pytest.skip(f"the packages' files come from git: {listed.stderr.strip()}")
    return [name for name in listed.stdout.split("\0") if name and (ROOT / name).is_file()]


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> tuple[Path, list[str]]:
    """A copy of what a fresh clone builds from, and the package files in it."""
    copy = tmp_path_factory.mktemp("clone")
    files = tracked_files()
    for name in [*BUILD_FILES, *files]:
        (copy / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, copy / name)
    return copy, files


def warnings_in(output: str) -> list[str]:
    return [line.strip() for line in output.splitlines() if re.search(r"warn", line, re.IGNORECASE)]


def test_the_wheel_builds_without_a_warning_and_ships_every_brain(source, tmp_path):
    copy, files = source
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
         "--disable-pip-version-check", "-w", str(tmp_path), str(copy)],
        cwd=copy, env=BUILD_ENV, capture_output=True, text=True, timeout=300,
    )
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    assert warnings_in(built.stdout + built.stderr) == []
    (wheel,) = tmp_path.glob("selfplay-*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())
    brains = [name for name in files if re.fullmatch(r"selfplay/pretrained/\w+/[^/]+\.(onnx|json)", name)]
    assert {"selfplay/pretrained/connect4/brain.onnx", "selfplay/pretrained/connect4/card.json"} <= set(brains)
    assert sorted(set(brains) - shipped) == []
    assert sorted(set(files) - shipped) == []  # every module and data file of ours, not only the brains


def test_the_editable_install_builds_without_a_warning(source, tmp_path):
    """What ``make venv`` installs (pip install -e, no build isolation: the same backend call)."""
    copy, _ = source
    built = subprocess.run(
        [sys.executable, "-c", "import sys, setuptools.build_meta as backend; backend.build_editable(sys.argv[1])",
         str(tmp_path)],
        cwd=copy, env=BUILD_ENV, capture_output=True, text=True, timeout=300,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    assert warnings_in(built.stdout + built.stderr) == []
    (wheel,) = tmp_path.glob("selfplay-*.whl")
    assert any(name.endswith(".pth") for name in zipfile.ZipFile(wheel).namelist())  # a plain path entry, no import hook
