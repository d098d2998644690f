"""`smtpfault run` with big things on the wire: a reply line past the bound of 65536 octets,
and raw() writes of megabytes, which the library must not scan or copy at a cost that grows
faster than their size."""

import unittest

from client_run_case import ScriptAgainstAServer
from scripted_server import ScriptedServer

ENDLESS = "a reply line longer than 65536 octets, still without its end"


class OverLongReplyLine(ScriptAgainstAServer):
    def test_replies_after_an_over_long_line_are_read_once_it_ends(self):
        # The greeting passes the bound before its end; the rest of it (and its CRLF) comes only
        # after the script has been told and has sent NOOP. The line is dropped up to its end,
        # and the NOOP's reply is read, not the same fault again.
        srv = ScriptedServer([b"B" * 50000 + b"\r\n250 2.0.0 ok\r\n"],
                             greeting=b"220 " + b"A" * 100000)
        self.addCleanup(srv.close)
        r = self.run_script(srv, "connect {}\n"
                                 "local r, err = reply()\n"
                                 "check(err == 'malformed reply: %s', 'told at the bound', err)\n"
                                 "send('NOOP')\n"
                                 "expect(250)\n" % ENDLESS)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("expect 250 to 'NOOP': got 250 2.0.0 ok", r.stdout)
        # 4 + 100000 + 50000 + 2 octets: the transcript says how much went unread.
        self.assertIn("*: the over-long reply line ended: 150006 octets up to its line end, "
                      "dropped", r.stdout)
        self.assertEqual(r.stdout.count(ENDLESS), 2, r.stdout)  # the transcript and the step


class BigRawWrites(ScriptAgainstAServer):
    """What raw() sends is named from its first octets and its line ends, found with plain
    searches: a few megabytes cost about their length, in instructions and in memory."""

    def test_a_labelled_raw_of_12_mib_without_a_line_end_is_sent_and_named(self):
        srv = ScriptedServer([b"250 2.0.0 ok\r\n"])
        self.addCleanup(srv.close)
        r = self.run_script(srv, "connect {} expect(220)\n"
                                 "raw(string.rep('X', 12 * 1024 * 1024), { label = '12 MiB' })\n"
                                 "raw('\\r\\n')\n"
                                 "expect(250)\n")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("expect 250 to raw '12 MiB': got 250", r.stdout)

    def test_raw_lines_of_16_mib_fit_the_default_memory_limit(self):
        # The script's own string and its concatenation are two copies of 16 MiB; the library
        # adds none, labelled or not, within the 64 MiB limit.
        srv = ScriptedServer([b"250 2.0.0 first\r\n", b"250 2.0.0 second\r\n"])
        self.addCleanup(srv.close)
        r = self.run_script(srv, "connect {} expect(220)\n"
                                 "raw(string.rep('X', 16 * 1024 * 1024) .. '\\r\\n')\n"
                                 "expect(250)\n"
                                 "raw(string.rep('Y', 16 * 1024 * 1024) .. '\\r\\n', "
                                 "{ label = '16 MiB' })\n"
                                 "expect(250)\n")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("expect 250 to raw 'XXXXXXXXXX", r.stdout)
        self.assertIn("expect 250 to raw '16 MiB': got 250 2.0.0 second", r.stdout)


if __name__ == "__main__":
    unittest.main()
