"""Command line: ``python -m bpfnb doctor`` checks the machine."""

from __future__ import annotations

import sys

from bpfnb.kernel.system import doctor, format_checks


def main(argv: list[str] | None = None) -> int:
    """Run ``bpfnb doctor``; return 1 when a required check fails."""
    args = sys.argv[1:] if argv is None else argv
    if args != ["doctor"]:
        print("usage: python -m bpfnb doctor", file=sys.stderr)
        return 2
    checks = doctor()
    print(format_checks(checks))
    return 0 if all(c.ok or c.optional for c in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
