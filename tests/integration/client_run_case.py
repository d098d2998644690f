"""What the tests of `smtpfault run` share: one smtpfault server per test class, scripts
written to a folder of the class's own, and running a script against a target."""

import os
import subprocess
import tempfile
import textwrap

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
