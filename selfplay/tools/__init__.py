"""The command line: train, arena, analyze, play, export, bench and warmup."""
