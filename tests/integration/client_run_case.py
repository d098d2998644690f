"""What the tests of `smtpfault run` share: one smtpfault server per test class, scripts
written to a folder of the class's own, and running a script against a target."""

import os
import shutil
import subprocess
import tempfile
import textwrap
import unittest

from smtpfault_server import ServerTestCase, binary_path, server_environment


class ClientRunCase(ServerTestCase):
    """One server per test class; script() writes a script, run_client() runs it."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tmp = tempfile.TemporaryDirectory(prefix="smtpfault-run-")
        cls.addClassCleanup(cls.tmp.cleanup)

    def script(self, text, name="client.lua"):
        path = os.path.join(self.tmp.name, name)
        with open(path, "w") as f:
            f.write(textwrap.dedent(text))
        return path

    def run_client(self, script, *args, target=None):
        target = target or "127.0.0.1:%d" % self.server.port
        return subprocess.run([binary_path(), "run", script, "--target", target, *args],
                              capture_output=True, text=True, timeout=60,
                              env=server_environment())


class ScriptAgainstAServer(unittest.TestCase):
    """run_script(srv, text): `smtpfault run` on a script given as text against srv.port."""

    # Lua: sleeps until connection c knows the server has gone (at most 5 s), reading nothing.
    UNTIL_CLOSED = ("local deadline = now() + 5\n"
                    "while not c.closed and now() < deadline do sleep(0.02) end\n")

    def run_script(self, srv, text, *flags):
        folder = tempfile.mkdtemp(prefix="script-")
        self.addCleanup(shutil.rmtree, folder, True)
        script = os.path.join(folder, "s.lua")
        with open(script, "w") as f:
            f.write(text)
        return subprocess.run([binary_path(), "run", script, "--target",
                               "127.0.0.1:%d" % srv.port, "--timeout", "5", *flags],
                              capture_output=True, text=True, timeout=60, env=server_environment())
