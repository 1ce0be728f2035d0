"""`python -m report pack ...` (meeting pack) and `python -m report brief ...` (monthly brief)."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {"pack": "report.pack", "brief": "report.brief"}
    if not argv or argv[0] not in commands:
        print("использование: python -m report {pack|brief} ...", file=sys.stderr)
        return 2
    module = __import__(commands[argv[0]], fromlist=["main"])
    return int(module.main(argv[1:]) or 0)


if __name__ == "__main__":
    sys.exit(main())
