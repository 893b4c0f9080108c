"""prepbench.tools: the building blocks every agent uses.

Ingest, chunking, skill loading, the run ledger, validation, coverage, export and the CLI.
"""

__version__ = "0.1.0"
