"""Pre-training: the loop, schedules, checkpoints and distributed setup."""
