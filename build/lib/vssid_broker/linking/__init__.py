"""Resolving a verified VNeID identity to exactly one VssID account, or refusing to guess."""
