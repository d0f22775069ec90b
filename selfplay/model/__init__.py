"""The network, its checkpoints, and the fast inference paths the actors and agents use."""
