"""Self-play training: actors play, the learner learns from the replay buffer, the trainer runs generations."""
