#!/usr/bin/env python3
"""Fails when a co_await is an operand of && or || anywhere in the engine's sources.

GCC 12 evaluates such a co_await even when the operators should have skipped it: in
`a && !co_await x() && b` and in `while (a && co_await x())`, x() runs with `a` false. So a
co_await stands alone: a statement, an initialisation, or the only test of an if. The
operator|| of Asio's awaitable operators, `co_await (a || b)`, is not a logical operator and is
allowed.

Usage: co_await_operands.py [DIR ...]   (default: the repository's engine/)
"""

import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Comments, then string and character literals (a "||" in a message is no operator).
COMMENT = re.compile(r"//[^\n]*|/\*.*?\*/", re.S)
LITERAL = re.compile(r'"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'')


def blank(match):
    """The match replaced by spaces, its newlines kept, so line numbers stay right."""
    return re.sub(r"[^\n]", " ", match.group(0))


def without_awaitable_operators(text):
    """`co_await (...)` with the parenthesised expression blanked out."""
    out, i = [], 0
    for m in re.finditer(r"\bco_await\s*\(", text):
        if m.start() < i:
            continue
        j = closing_paren(text, m.end())
        out.append(text[i:m.end()])
        out.append(re.sub(r"[^\n]", " ", text[m.end():j - 1]))
        i = j - 1
    out.append(text[i:])
    return "".join(out)


def closing_paren(text, i):
    """The index just past the parenthesis that closes the one before text[i]."""
    depth = 1
    while i < len(text) and depth:
        depth += {"(": 1, ")": -1}.get(text[i], 0)
        i += 1
    return i


def expressions(statement):
    """An if, while, for or switch statement's condition and its body apart (the operators in
    `if (a && b) co_await x;` are not the co_await's); any other statement whole."""
    m = re.match(r"\s*(?:else\s+)?(?:if|while|for|switch)\s*\(", statement)
    if not m:
        return [statement]
    end = closing_paren(statement, m.end())
    return [statement[m.end():end - 1], statement[end:]]


def offences(text):
    """(line, statement) for each statement with a co_await and && or || in one expression."""
    text = without_awaitable_operators(LITERAL.sub(blank, COMMENT.sub(blank, text)))
    found, start = [], 0
    for m in re.finditer(r"[;{}]", text + ";"):
        statement = text[start:m.start()]
        if any(re.search(r"\bco_await\b", e) and re.search(r"&&|\|\|", e)
               for e in expressions(statement)):
            line = text.count("\n", 0, start + len(statement) - len(statement.lstrip())) + 1
            found.append((line, " ".join(statement.split())))
        start = m.end()
    return found


# The check's own cases: what it must find, and what it must let pass.
MUST_FIND = [
    "if (a && !co_await f() && b) return;",
    "while (!gone && co_await pause(d)) {",
    "if (!co_await f() || closed()) break;",
    "bool ok = ready ||\n    co_await f();",
    "if (x) {\n  if (a && co_await f()) y();\n}",
]
MUST_PASS = [
    "if (!co_await f()) break;",
    "if (a && b) co_await f();",
    "auto r = co_await (read() || timer.async_wait(as_value));",
    'note("a || b"); co_await f();',
    "// a && co_await f()\nco_await f();",
    "auto [ec, n] = tls ? co_await a() : co_await b();",
]


def check_itself():
    wrong = [c for c in MUST_FIND if not offences(c)] + [c for c in MUST_PASS if offences(c)]
    for case in wrong:
        print("the check itself is wrong about: %r" % case)
    return not wrong


def main(dirs):
    if not check_itself():
        return 2
    bad = 0
    for top in dirs:
        for folder, _, files in os.walk(top):
            for name in sorted(files):
                if not name.endswith((".cpp", ".hpp")):
                    continue
                path = os.path.join(folder, name)
                with open(path, encoding="utf-8") as f:
                    for line, statement in offences(f.read()):
                        print("%s:%d: co_await as an operand of && or ||: %s"
                              % (os.path.relpath(path, ROOT), line, statement))
                        bad += 1
    if bad:
        print("%d place(s): give the co_await a statement of its own (GCC 12 evaluates it "
              "even where the operator should skip it)" % bad)
        return 1
    print("no co_await is an operand of && or ||")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or [os.path.join(ROOT, "engine")]))
