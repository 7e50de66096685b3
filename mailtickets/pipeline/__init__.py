"""The per-message pipeline: parse, match, decide and record one message in one transaction."""

from mailtickets.pipeline.ingest import Pipeline

__all__ = ["Pipeline"]
