"""Accounts, roles, second factor, API tokens and the permission table."""
