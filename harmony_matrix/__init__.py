"""Harmony: a Matrix bot and web companion that runs decision-making by Consensus."""

__version__ = "0.1.0"
