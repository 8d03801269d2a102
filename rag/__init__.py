"""Arabic-first, citation-grounded question answering over news articles."""

import os

# numpy's OpenBLAS on one thread, set before numpy loads: its products here are small (question tokens x passage
# tokens), and idle OpenBLAS threads spin on the cores the model's forward pass needs.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

__version__ = "0.1.0"
