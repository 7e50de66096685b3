"""Intake: the ways raw messages reach the pipeline (pipe/files, IMAP IDLE, LMTP)."""
