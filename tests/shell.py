"""``TestingShell``: a real IPython InteractiveShell for driving the magics in tests.

History is off (no sqlite file, no cross-test state), ``%load_ext bpfnb`` has run, and
:meth:`TestingShell.run` raises the cell's exception instead of printing it, so a test
fails with the real error. :meth:`TestingShell.run_cell` returns IPython's
``ExecutionResult`` for tests that check how an error is *shown*.
"""

from __future__ import annotations

from typing import Any

from IPython.core.interactiveshell import ExecutionResult, InteractiveShell
from traitlets.config import Config


class TestingShell:
    """The process's InteractiveShell, set up for tests (see the module docstring)."""

    __test__ = False  # not a test class

    def __init__(self) -> None:
        config = Config()
        config.HistoryManager.enabled = False
        if InteractiveShell.initialized():
            self.ip = InteractiveShell.instance()
            self.ip.history_manager.enabled = False
        else:
            self.ip = InteractiveShell.instance(config=config)
        result = self.ip.run_cell("%load_ext bpfnb")
        if not result.success:
            raise RuntimeError(f"%load_ext bpfnb failed: {result.error_in_exec}")

    @property
    def user_ns(self) -> dict[str, Any]:
        """The notebook's namespace."""
        return self.ip.user_ns

    def run_cell(self, text: str) -> ExecutionResult:
        """Run a cell as the notebook would (errors are shown, not raised)."""
        return self.ip.run_cell(text)

    def run(self, text: str) -> Any:
        """Run a cell and return its value; raise its exception when it failed."""
        result = self.ip.run_cell(text)
        if result.error_before_exec is not None:
            raise result.error_before_exec
        if result.error_in_exec is not None:
            raise result.error_in_exec
        return result.result

    def close(self) -> None:
        """Stop every program the shell loaded."""
        self.ip.run_cell("%bpf stop --all")
