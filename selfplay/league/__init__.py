"""League play: a population of learners, PFSP opponent choice, ratings, reports and the ladder.

population (who plays whom, freezing, resets) <- store (the league directory's files) <- run (the
league loop); report (ratings, status, plots), ladder and final read a league directory through
store; exploit trains one learner against a fixed agent. The command line is
selfplay.tools.league_cmd.
"""
