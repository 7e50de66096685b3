"""The composition root of `mailtickets run`."""
