import os

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
# make test runs two workers on two cores, and many tests learn in the worker itself. torch's
# OpenMP threads spin while they wait unless told otherwise (read once, when torch loads: this
# file runs before any test imports it), and two workers' spinning threads take each other's
# cores (docs/training.md, "CPU threads"). The `selfplay` command sets the same for itself. (A
# guard, not a speed-up: the suite took 382 s with it and 379 s without on two AVX2 cores.)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
