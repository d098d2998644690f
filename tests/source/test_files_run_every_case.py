#!/usr/bin/env python3
"""Fails when a test script defines a test class or function after its `unittest.main()` block,
or has no such block.

CTest runs each integration test file as a script: `unittest.main()` runs the cases defined so
far and exits, so a class written below the block is never run there, and the file still
passes (it happened to four files; running them with `-m unittest` hid it).

Usage: test_files_run_every_case.py [DIR ...]   (default: the repository's tests/integration/)
"""

import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MAIN = re.compile(r"""^if __name__ == ["']__main__["']:""", re.M)
DEFINITION = re.compile(r"^(class|def) (\w+)", re.M)


def late_definitions(path):
    """Names of the classes and functions defined after the file's main block."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    main = MAIN.search(text)
    if not main:   # run as a script, the file would define its cases and run none
        return ["every case (there is no unittest.main() block)"]
    return [m.group(2) for m in DEFINITION.finditer(text, main.end())]


def main(dirs):
    problems = []
    for d in dirs:
        for name in sorted(os.listdir(d)):
            if name.startswith("test_") and name.endswith(".py"):
                path = os.path.join(d, name)
                problems += ["%s: %s is defined after the unittest.main() block, so CTest never "
                             "runs it" % (path, n) for n in late_definitions(path)]
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or [os.path.join(ROOT, "tests", "integration")]))
