"""Which command each reply of `smtpfault run` is named after: the greeting is the first reply
whatever the script sent before reading it, and a message sent by hand ends only at CRLF "."
CRLF (RFC 5321 4.1.1.4), so a "." after a bare LF is text of it, with or without a label."""

import re
import unittest

from client_run_case import ClientRunCase

ENVELOPE = """
    connect {}
    expect(220)
    ehlo("x.test")
    send("MAIL FROM:<a@x.test>") expect(250)
    send("RCPT TO:<b@x.test>") expect(250)
    send("DATA") expect(354)
"""


class ReplyNamesTest(ClientRunCase):
    def steps(self, text):
        p = self.run_client(self.script(text), "--timeout", "5")
        self.assertNotIn("error", p.stdout + p.stderr)
        return re.findall(r"^(?:ok|FAIL) +\S+ (.+?): ", p.stdout, re.M)

    def test_the_first_reply_is_the_greeting_even_after_a_command(self):
        steps = self.steps("""
            connect {}
            send("EHLO x.test")
            expect(220)
            expect(250)
            quit()
        """)
        self.assertEqual(steps, ["expect 220 (greeting)", "expect 250 to 'EHLO x.test'",
                                 "expect 221 to 'QUIT'"])

    def test_a_dot_after_a_bare_lf_does_not_end_the_message(self):
        for label in ("", ', { label = "smuggled" }'):
            with self.subTest(label=label):
                steps = self.steps(ENVELOPE + """
                    raw("Subject: s\\r\\n\\r\\nbody\\n.\\nNOOP\\r\\n"%s)
                    raw("\\r\\n.\\r\\n")
                    expect({250, 5})
                    send("NOOP") expect(250)
                    quit()
                """ % label)
                self.assertEqual(steps[-3:], ["expect 250|5xx to raw '.\\r\\n'",
                                              "expect 250 to 'NOOP'", "expect 221 to 'QUIT'"])

    def test_the_end_of_a_message_is_named_after_the_label_of_its_write(self):
        steps = self.steps(ENVELOPE + """
            raw("Subject: s\\r\\n\\r\\nbody\\r")
            raw("\\n.\\r\\nNOOP\\r\\n", { label = "end and NOOP" })
            expect({250, 5}) expect(250)
            quit()
        """)
        self.assertEqual(steps[-3:], ["expect 250|5xx to raw 'end and NOOP'",
                                      "expect 250 to raw 'end and NOOP'", "expect 221 to 'QUIT'"])

    def test_send_after_a_bare_lf_goes_on_with_the_message(self):
        steps = self.steps(ENVELOPE + """
            raw("Subject: s\\r\\n\\r\\nbody\\n")
            send(".")
            send(".")
            expect({250, 5})
            quit()
        """)
        self.assertEqual(steps[-2:], ["expect 250|5xx to '.'", "expect 221 to 'QUIT'"])


if __name__ == "__main__":
    unittest.main()
