"""prepbench.agents."""
