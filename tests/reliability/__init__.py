"""Reliability under abuse, crypto soundness and property-based tests (issue 9)."""
