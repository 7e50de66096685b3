"""What an operator runs beside the service: backups, moving between databases, purging kept raw mail."""
