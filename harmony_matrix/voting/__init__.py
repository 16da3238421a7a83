"""Voting: STAR tabulation (pure and vectorised) and reading ballot files."""
