"""Arabic-first, citation-grounded question answering over news articles."""

import os

# numpy's OpenBLAS on one thread, set before numpy loads: its products here are small (question tokens x passage
# tokens), and idle OpenBLAS threads spin on the cores the model's forward pass needs.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def limit_numpy_blas() -> None:
    """The same cap for a process that imported numpy before this package (a benchmark, a host application):
    the environment variable is read once, when OpenBLAS loads, so set numpy's own OpenBLAS (pthreads) to one
    thread through threadpoolctl. faiss's OpenBLAS is left alone: it runs on OpenMP, whose thread count is faiss's
    own (limiting it would set faiss's too)."""
    import sys

    if "numpy" not in sys.modules:
        return  # the variable above applies when it loads
    from threadpoolctl import ThreadpoolController

    controller = ThreadpoolController()
    numpy_blas = [i["filepath"] for i in controller.info() if i["user_api"] == "blas" and "numpy" in i["filepath"]]
    if numpy_blas:
        controller.select(filepath=numpy_blas).limit(limits=1)

__version__ = "0.1.0"
