"""prepbench.evaluation."""
