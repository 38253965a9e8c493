"""`python -m sinklab.cli ...`: the same as the `sinklab` command (torchrun and the sweeps launch it so)."""
import sys

from . import main

sys.exit(main())
