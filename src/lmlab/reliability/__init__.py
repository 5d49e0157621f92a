"""Runs that survive kills and bad data: atomic checkpoints, auto-resume, SIGTERM saves, non-finite losses."""
