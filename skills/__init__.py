"""prepbench.skills."""
