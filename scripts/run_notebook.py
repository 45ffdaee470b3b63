"""Execute a notebook headless with nbclient and save the executed copy.

Usage: ``python scripts/run_notebook.py NOTEBOOK OUTDIR``. The notebook's kernel runs
in ``OUTDIR``'s parent working directory with ``BPFNB_OUT`` pointing at ``OUTDIR``
(where the notebooks write their CSV files). Prints every CSV file written.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient


def main(argv: list[str]) -> int:
    """Run the notebook ``argv[0]``, writing outputs to ``argv[1]``."""
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    notebook, out = Path(argv[0]), Path(argv[1]).resolve()
    out.mkdir(parents=True, exist_ok=True)
    os.environ["BPFNB_OUT"] = str(out)
    nb = nbformat.read(notebook, as_version=4)
    start = time.monotonic()
    print(f"running {notebook} ({len(nb.cells)} cells)...", flush=True)
    client = NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(Path.cwd())}}
    )
    client.execute()
    executed = out / notebook.name
    nbformat.write(nb, executed)
    print(f"done in {time.monotonic() - start:.1f} s; executed notebook: {executed}")
    for csv in sorted(out.glob("*.csv")):
        rows = sum(1 for _ in csv.open()) - 1
        print(f"  {csv} ({rows} rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
