"""``python -m prepbench.tools.cli``."""

from prepbench.tools.cli import main

main()
