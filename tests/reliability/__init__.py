"""Reliability (issue 9): load, faults, abuse, crypto soundness and property-based tests."""
