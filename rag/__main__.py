"""`rag` (and `python -m rag`): runs the command line of rag/cli.py, then leaves at once."""

from __future__ import annotations

import os
import sys
from typing import Any


def main() -> None:
    from rag.cli import app

    run(app)


def run(app: Any) -> None:
    """Run the command line `app`, then leave without tearing down what it loaded: freeing the tokenizer's 250,002
    pieces and the model took 1.1 s after the last line of a 14 s `rag index` here. What a command writes is
    committed (fsynced) before it returns, and Ray is shut down by its own context; output is flushed here.
    `python -m rag.cli` calls this with the `app` of its own module, which is then imported once."""
    import logging

    try:
        app()
        code: object = 0
    except SystemExit as e:
        code = e.code
    if isinstance(code, str):  # what sys.exit("message") would print
        print(code, file=sys.stderr)
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code if isinstance(code, int) else 0 if code is None else 1)


if __name__ == "__main__":
    main()
