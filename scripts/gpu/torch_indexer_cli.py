"""sinklab's command line with DSA's selection scores computed in PyTorch instead of the Triton kernel, so a run
through the PyTorch indexer can sit beside one through the kernel (scripts/gpu/dsa_training.sh).
    python scripts/gpu/torch_indexer_cli.py train quick-60m model.sparse=dsa ...
"""
import sys

from sinklab.cli import main
from sinklab.model import attention

attention.DSA_TRITON_INDEXER = False
sys.exit(main(sys.argv[1:]))
