"""League play: a population of learners, PFSP opponent choice, ratings, reports and the ladder."""
