"""Append-only, hash-chained audit trail (who did what, to which record, from where)."""
