"""Scripted roster (placeholder import target; filled in by the roster work)."""
