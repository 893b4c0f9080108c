"""Sample corpora shipped with prepbench (data, not code)."""
