"""selfplay: training by self-play (networks, self-play actors, replay, learner, arena, Elo),
and the ``selfplay`` command line. Depends on ``games`` and ``search``."""
