"""`smtpfault send --notify/--ret/--envid` (RFC 3461): NOTIFY goes on every RCPT, RET and ENVID
(as xtext) on MAIL, and the server stores them as they came; a bad value is a usage error, and a
server that does not offer DSN gets nothing at all."""

import re
import shutil
import tempfile
import unittest

from smtpfault_server import SmtpfaultServer, assert_not_sent, server_with_scenario, write_file
from smtpfault_server import run_binary as run

HIDE_DSN = 'function on_ehlo(s, name)\n  return smtp.hide("DSN")\nend\n'


class SendAsksForNotifications(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.server = SmtpfaultServer().start()

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        cls.server.cleanup()

    def send(self, *flags, env=None):
        return run("send", "--server", "127.0.0.1:%d" % self.server.port, "--from", "a@x.test",
                   *flags, env=env)

    def test_the_stored_message_carries_the_parameters_as_sent(self):
        before = len(self.server.messages())
        r = self.send("--to", "b@y.test", "--to", "c@y.test", "--notify", "success,Failure",
                      "--ret", "hdrs", "--envid", "id+1 x=2")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertRegex(r.stdout, r"C: MAIL FROM:<a@x.test> SIZE=\d+ RET=HDRS "
                         r"ENVID=id\+2B1\+20x\+3D2\n")
        msg = self.server.wait_for_messages(before + 1)[-1]
        params = dict(msg.meta["mail_params"])
        self.assertIsInstance(params.pop("SIZE"), str)
        self.assertEqual(params, {"RET": "HDRS", "ENVID": "id+2B1+20x+3D2"})
        self.assertEqual(msg.meta["recipients"],
                         [{"address": "b@y.test", "params": {"NOTIFY": "SUCCESS,FAILURE"}},
                          {"address": "c@y.test", "params": {"NOTIFY": "SUCCESS,FAILURE"}}])

    def test_without_the_flags_no_dsn_parameter_is_sent(self):
        before = len(self.server.messages())
        r = self.send("--to", "b@y.test")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        msg = self.server.wait_for_messages(before + 1)[-1]
        self.assertEqual(list(msg.meta["mail_params"]), ["SIZE"])
        self.assertEqual(msg.meta["recipients"][0]["params"], {})

    def test_the_flags_come_from_the_file_and_the_environment_too(self):
        folder = tempfile.mkdtemp(prefix="smtpfault-dsn-")
        self.addCleanup(shutil.rmtree, folder, True)
        cfg = write_file(folder, "send.toml", '[send]\nto = "b@y.test"\nnotify = "delay"\n'
                         'envid = "from the file"\n')
        before = len(self.server.messages())
        r = self.send("--config", cfg, env={"SMTPFAULT_SEND_RET": "full"})
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        msg = self.server.wait_for_messages(before + 1)[-1]
        self.assertEqual(msg.meta["mail_params"]["RET"], "FULL")
        self.assertEqual(msg.meta["mail_params"]["ENVID"], "from+20the+20file")
        self.assertEqual(msg.meta["recipients"][0]["params"], {"NOTIFY": "DELAY"})
        bad = write_file(folder, "bad.toml", '[send]\nto = "b@y.test"\nret = "ALL"\n')
        r = self.send("--config", bad)
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertIn("%s:3:7: key 'send.ret': expected FULL or HDRS, got 'ALL'" % bad, r.stderr)

    def test_a_bad_value_is_a_usage_error_naming_the_flag(self):
        cases = [
            (["--notify", "NEVER,SUCCESS"],
             "--notify: NEVER stands alone, with no SUCCESS, FAILURE or DELAY (RFC 3461 4.1)"),
            (["--notify", "BOGUS"],
             "--notify: 'BOGUS' is none of NEVER, SUCCESS, FAILURE and DELAY (RFC 3461 4.1)"),
            (["--notify", "delay,DELAY"], "--notify: DELAY given twice (RFC 3461 4.1)"),
            (["--ret", "X"], "--ret: expected FULL or HDRS, got 'X'"),
            (["--envid", "e" * 101],
             "--envid: 101 characters as sent ('+', '=' and a space take three each); "
             "RFC 3461 4.4 allows 100"),
            # 100 characters as written, 102 as xtext: the server counts what it gets.
            (["--envid", "e" * 99 + "+"], "--envid: 102 characters as sent"),
            (["--envid", "a\r\nRSET"], "--envid: only printable US-ASCII may be in it (RFC 3461 "
                                       "4.4), not the octet \\r"),
        ]
        before = len(self.server.messages())
        for flags, message in cases:
            with self.subTest(flags=flags):
                r = self.send("--to", "b@y.test", *flags)
                self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
                self.assertIn("smtpfault send: " + message, r.stderr)
                self.assertIn("(see smtpfault send --help)", r.stderr)
                self.assertEqual(r.stdout, "")
        self.assertEqual(len(self.server.messages()), before)
        r = self.send("--to", "b@y.test", "--envid", "e" * 100)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)


class SendWithoutDsnOnTheServer(unittest.TestCase):
    """As a message that needs 8BITMIME: not sent at all, exit 1, the session ended with QUIT."""

    def assert_refused_for_dsn(self, srv, r, asked):
        assert_not_sent(self, srv, r, "delivery status notifications (%s) need DSN (RFC 3461), "
                        "and the server did not offer it" % asked)

    def send(self, srv, *flags):
        return run("send", "--server", "127.0.0.1:%d" % srv.port, "--from", "a@x.test",
                   "--to", "b@y.test", *flags)

    def test_a_server_that_hides_dsn_gets_nothing(self):
        srv = server_with_scenario(self, HIDE_DSN)
        for flags, asked in ((["--notify", "never"], "NOTIFY"), (["--ret", "full"], "RET"),
                             (["--envid", "e", "--notify", "failure"], "NOTIFY and ENVID")):
            with self.subTest(flags=flags):
                r = self.send(srv, *flags)
                self.assertNotIn("C: HELO", r.stdout)   # EHLO was answered, without DSN
                self.assertNotRegex(r.stdout, re.compile(r"^S: 250[- ]DSN$", re.M))
                self.assert_refused_for_dsn(srv, r, asked)
        # Without the flags the same server takes the message.
        r = self.send(srv)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(len(srv.wait_for_messages(1)), 1)

    def test_after_helo_no_extension_is_offered(self):
        srv = SmtpfaultServer("--scenario", "ehlo-unsupported").start()
        self.addCleanup(srv.cleanup)
        self.addCleanup(srv.stop)
        r = self.send(srv, "--notify", "SUCCESS", "--ret", "HDRS", "--envid", "x")
        self.assertIn("C: HELO smtpfault.client", r.stdout)
        self.assert_refused_for_dsn(srv, r, "NOTIFY, RET and ENVID")


if __name__ == "__main__":
    unittest.main()
