"""The offline ``extractive`` generator: samples written from the book's own sentences."""

from prepbench.agents.extractive.generator import ExtractiveGenerator

__all__ = ["ExtractiveGenerator"]
