"""lua/client.meta.lua, the LuaLS annotations of the client API, against the runtime: each
function's options class lists exactly the options `smtpfault run` takes (which it says when it
refuses an unknown one: "unknown option 'x' (it takes: a, b)"), so that an editor neither
offers an option the run refuses nor flags one it takes."""

import json
import os
import re
import subprocess
import unittest

from client_run_case import ClientRunCase
from scripted_server import ScriptedServer
from smtpfault_server import binary_path, server_environment

META = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lua",
                    "client.meta.lua")

# A valid value for each parameter the meta file declares before `opts`, by its name.
ARGUMENTS = {"want": "250", "line": '"NOOP"', "bytes": '"x"', "name": '"x.test"',
             "mechanism": '"PLAIN"', "user": '"u"', "password": '"p"', "body": '"x"',
             "chunk": '"x"'}


def meta_classes(text):
    """{class: set of its fields, those of the classes it extends included}"""
    own, parent = {}, {}
    current = None
    for line in text.splitlines():
        m = re.match(r"---@class (\S+?)(?:: (\S+))?$", line)
        if m:
            current = m.group(1)
            own[current], parent[current] = set(), m.group(2)
            continue
        m = re.match(r"---@field (\w+) ", line)
        if m and current:
            own[current].add(m.group(1))
        elif not line.startswith("---"):
            current = None

    def fields(name):
        return own[name] | (fields(parent[name]) if parent[name] else set())
    return {name: fields(name) for name in own}


def meta_functions(text):
    """[(name, is_method, [params before opts], options class)] of each function with opts"""
    out, params = [], []
    for line in text.splitlines():
        m = re.match(r"---@param (\w+) (\S+)", line)
        if m:
            params.append(m.groups())
            continue
        m = re.match(r"function (Connection:)?(\w+)\(", line)
        if m:
            names = [p for p, _ in params]
            if "opts" in names:
                kind = dict(params)["opts"]
                out.append((m.group(2), bool(m.group(1)), names[:names.index("opts")], kind))
        if not line.startswith("---"):
            params = []
    return out


class MetaOptionsTest(ClientRunCase):
    def test_each_functions_options_class_is_what_the_runtime_takes(self):
        with open(META) as f:
            text = f.read()
        classes = meta_classes(text)
        functions = meta_functions(text)
        self.assertGreater(len(functions), 25)
        calls = []
        for name, is_method, before, kind in functions:
            # One class per function, not an inline table or a union, so it can be compared.
            self.assertRegex(kind, r"^client\.\w+\?$", name)
            self.assertIn(kind[:-1], classes, name)
            args = [ARGUMENTS[p] for p in before] + ["{ zz_unknown = true }"]
            call = ("c:%s(%s)" if is_method else "%s(%s)") % (name, ", ".join(args))
            calls.append("report(%r, select(2, pcall(function() return %s end)))"
                         % (("c:" if is_method else "") + name, call))
        path = self.script("local c = connect {}\n" + "\n".join(calls) + "\n", "meta.lua")
        report = os.path.join(self.tmp.name, "meta.json")
        p = self.run_client(path, "--json", report, "--quiet")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        with open(report) as f:
            errors = json.load(f)["report"]
        for name, is_method, _, kind in functions:
            key = ("c:" if is_method else "") + name
            with self.subTest(key):
                m = re.search(r"unknown option 'zz_unknown' \(it takes: (.*)\)$", errors[key])
                self.assertTrue(m, "%s: %s" % (key, errors[key]))
                self.assertEqual(set(m.group(1).split(", ")), classes[kind[:-1]],
                                 "%s is annotated with %s" % (key, kind))

    def test_expect_closed_takes_the_name_it_says_it_takes(self):
        srv = ScriptedServer([b"221 bye\r\n"], then_close=True)
        self.addCleanup(srv.close)
        path = self.script('connect {} expect(220) send("QUIT") expect(221)\n'
                           'expect_closed { name = "the server hangs up", timeout = 5 }\n',
                           "closed.lua")
        p = subprocess.run([binary_path(), "run", path, "--target", "127.0.0.1:%d" % srv.port],
                           capture_output=True, text=True, timeout=60, env=server_environment())
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertRegex(p.stdout, r"ok +\S+ the server hangs up: closed after")


if __name__ == "__main__":
    unittest.main()
