"""Scheduled jobs that run inside `mailtickets run` and can be run once by hand."""
