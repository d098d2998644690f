"""Scenarios that share code through require(): a module beside the scenario file, found by
`smtpfault test --scenarios DIR`, `serve --scenario` and the API's switch by file name, refused
for source text that has no folder."""

import json
import os
import smtplib
import subprocess
import unittest

from smtpfault_server import SmtpfaultServer, binary_path, server_environment, write_file
from catalogue_case import PYTHON, run_test, scratch_folder, verdicts

POLICY = """
-- Shared by the scenarios of this folder: which recipients are refused, and how.
local M = {}
function M.refused(address)
  return address:find("^blocked@") ~= nil
end
function M.reply()
  return smtp.reply(550, "5.1.1", "refused by the shared policy")
end
return M
"""

SCENARIO = """
local policy = require("lib.policy")
function on_rcpt(s, rcpt)
  if policy.refused(rcpt.address) then return policy.reply() end
end
expect { delivered = 1, quit = true }
"""

MAILER = """
import os, smtplib
s = smtplib.SMTP(os.environ['SMTP_HOST'], int(os.environ['SMTP_PORT']))
refused = s.sendmail('a@example.com', ['ok@example.com', 'blocked@example.com'], 'Subject: x\\r\\n\\r\\nhi\\r\\n')
assert list(refused) == ['blocked@example.com'], refused
print(refused['blocked@example.com'][1].decode())
s.quit()
"""


class ModulesInTestRuns(unittest.TestCase):
    def test_a_scenario_folder_shares_a_module_from_its_lib_folder(self):
        folder = scratch_folder(self)
        os.makedirs(os.path.join(folder, "lib"))
        write_file(os.path.join(folder, "lib"), "policy.lua", POLICY)
        write_file(folder, "shared-policy.lua", SCENARIO)
        report = os.path.join(folder, "report.json")
        status, out, err = run_test(["--scenarios", folder, "--json", report, "--", PYTHON, "-c",
                                     MAILER])
        self.assertEqual(status, 0, out + err)
        results = verdicts(report)
        # The module's folder is not a scenario of the run.
        self.assertEqual(list(results), ["shared-policy"])
        self.assertIn("refused by the shared policy", results["shared-policy"]["command_output"])

    def test_one_text_in_two_folders_is_two_scenarios_when_it_requires_modules(self):
        folder = scratch_folder(self)
        paths = []
        for sub, policy in (("lenient", "return { refused = function() return false end }\n"),
                            ("strict", POLICY)):
            os.makedirs(os.path.join(folder, sub, "lib"))
            write_file(os.path.join(folder, sub, "lib"), "policy.lua", policy)
            paths.append(write_file(os.path.join(folder, sub), "relay.lua",
                                    SCENARIO.replace("policy.reply()", "smtp.reply(550)")))
        report = os.path.join(folder, "report.json")
        mailer = ("import os, smtplib\n"
                  "s = smtplib.SMTP(os.environ['SMTP_HOST'], int(os.environ['SMTP_PORT']))\n"
                  "try:\n"
                  "    s.sendmail('a@example.com', ['blocked@example.com'], 'Subject: x\\r\\n\\r\\nhi')\n"
                  "finally:\n"
                  "    s.quit()\n")
        status, out, err = run_test(["--scenario", paths[0], "--scenario", paths[1], "--json",
                                     report, "--", PYTHON, "-c", mailer])
        self.assertNotIn("given more than once", err)
        with open(report) as f:
            results = json.load(f)["results"]
        self.assertEqual([r["file"] for r in results], paths)
        # The strict policy refuses the only recipient: nothing is delivered there.
        self.assertEqual([r["verdict"] for r in results], ["PASS", "FAIL"], out + err)

    def test_a_module_left_among_the_scenarios_is_an_error_not_a_pass(self):
        folder = scratch_folder(self)
        write_file(folder, "policy.lua", POLICY)  # beside the scenario, not in lib/
        write_file(folder, "relay.lua", SCENARIO.replace("lib.policy", "policy"))
        report = os.path.join(folder, "report.json")
        status, out, err = run_test(["--scenarios", folder, "--json", report, "--", PYTHON, "-c",
                                     MAILER])
        self.assertEqual(status, 2, out + err)
        results = verdicts(report)
        self.assertEqual(results["relay"]["verdict"], "PASS", out + err)
        self.assertEqual(results["policy"]["verdict"], "ERROR")
        self.assertIn("returns a value at its top level, as a module does", out + err)

    def test_a_module_error_names_the_module_file_and_line(self):
        folder = scratch_folder(self)
        os.makedirs(os.path.join(folder, "lib"))
        write_file(os.path.join(folder, "lib"), "policy.lua", "local M = {}\nM.x = nil + 1\n")
        path = write_file(folder, "s.lua", SCENARIO)
        status, out, err = run_test(["--scenario", path, "--", PYTHON, "-c", "pass"])
        self.assertEqual(status, 2, out + err)
        self.assertIn("lib/policy.lua:2: attempt to perform arithmetic on a nil value", out + err)

    def test_a_hook_defined_in_a_module_and_again_in_the_scenario_is_named(self):
        # Only the one defined last would run, without a word.
        folder = scratch_folder(self)
        os.makedirs(os.path.join(folder, "lib"))
        write_file(os.path.join(folder, "lib"), "policy.lua",
                   "local M = {}\nfunction on_rcpt(s, r) return smtp.reply(451) end\nreturn M\n")
        path = write_file(folder, "s.lua", SCENARIO)
        r = subprocess.run([binary_path(), "check", path], capture_output=True, text=True,
                           timeout=30, env=server_environment())
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("lib/policy.lua:2: on_rcpt is defined again at %s:3, and only that one "
                      "runs" % path, r.stdout + r.stderr)

    def test_a_module_only_a_hook_requires_is_checked_before_any_session(self):
        folder = scratch_folder(self)
        os.makedirs(os.path.join(folder, "lib"))
        write_file(os.path.join(folder, "lib"), "policy.lua", POLICY)
        in_hook = SCENARIO.replace('local policy = require("lib.policy")\n', "").replace(
            "  if policy", '  local policy = require("lib.polcy")\n  if policy')
        path = write_file(folder, "s.lua", in_hook)
        check = subprocess.run([binary_path(), "check", path], env=server_environment(),
                               capture_output=True, text=True, timeout=60)
        self.assertEqual(check.returncode, 1, check.stdout + check.stderr)
        self.assertIn("s.lua:3: require 'lib.polcy': ", check.stderr)
        self.assertIn("(did you mean 'lib.policy'?)", check.stderr)
        status, out, err = run_test(["--scenario", path, "--", PYTHON, "-c", MAILER])
        self.assertEqual(status, 2, out + err)
        # Spelt right, the module is read when the hook first runs: the mailer (which asserts
        # that the blocked recipient was refused) passes.
        write_file(folder, "s.lua", in_hook.replace("lib.polcy", "lib.policy"))
        status, out, err = run_test(["--scenario", path, "--", PYTHON, "-c", MAILER])
        self.assertEqual(status, 0, out + err)


class ModulesInServe(unittest.TestCase):
    def setUp(self):
        self.folder = scratch_folder(self)
        os.makedirs(os.path.join(self.folder, "lib"))
        write_file(os.path.join(self.folder, "lib"), "policy.lua", POLICY)
        self.scenario = write_file(self.folder, "policy.lua", SCENARIO)
        self.server = SmtpfaultServer("--scenario", self.scenario).start()
        self.addCleanup(self.server.cleanup)
        self.addCleanup(self.server.stop)

    def refused_by(self):
        with smtplib.SMTP("127.0.0.1", self.server.port, timeout=10) as s:
            return s.sendmail("a@example.com", ["ok@example.com", "blocked@example.com"],
                              "Subject: x\r\n\r\nhi\r\n")

    def test_serve_and_the_api_switch_by_name_find_the_module(self):
        self.assertEqual(self.refused_by()["blocked@example.com"][0], 550)
        status, _, body = self.server.api("PUT", "/api/v1/scenario", {"name": "accept-all"})
        self.assertEqual(status, 200, body)
        self.assertEqual(self.refused_by(), {})
        status, _, body = self.server.api("PUT", "/api/v1/scenario", {"name": self.scenario})
        self.assertEqual(status, 200, body)
        self.assertEqual(self.refused_by()["blocked@example.com"][0], 550)

    def test_deleting_the_sessions_reads_the_file_and_its_modules_again(self):
        # The text kept in memory with modules read anew would be a mixture nobody wrote: both
        # come from disk, as at start.
        write_file(os.path.join(self.folder, "lib"), "policy.lua",
                   POLICY.replace("^blocked@", "^barred@"))
        write_file(self.folder, "policy.lua", SCENARIO.replace(
            "return policy.reply()", "return smtp.reply(550, '5.1.1', 'refused by scenario v2')"))
        self.assertEqual(self.refused_by()["blocked@example.com"][0], 550)   # still the first
        status, _, body = self.server.api("DELETE", "/api/v1/sessions")
        self.assertEqual(status, 200, body)
        with smtplib.SMTP("127.0.0.1", self.server.port, timeout=10) as s:
            refused = s.sendmail("a@example.com", ["blocked@example.com", "barred@example.com"],
                                 "Subject: x\r\n\r\nhi\r\n")
        self.assertEqual(list(refused), ["barred@example.com"])
        self.assertIn(b"refused by scenario v2", refused["barred@example.com"][1])
        # A file broken since: the scenario keeps its state, and the log and the reply say why.
        write_file(self.folder, "policy.lua", "function on_rcpt(\n")
        status, _, body = self.server.api("DELETE", "/api/v1/sessions")
        self.assertEqual(status, 200, body)
        self.assertIn("the scenario kept its state: loading it again failed: ", body["note"])
        self.server.wait_for_line(r"scenario .*policy\.lua kept its state: loading it again for "
                                  r"the sessions deleted over the API failed: ")
        with smtplib.SMTP("127.0.0.1", self.server.port, timeout=10) as s:
            refused = s.sendmail("a@example.com", ["ok@example.com", "barred@example.com"],
                                 "Subject: x\r\n\r\nhi\r\n")
        self.assertEqual(list(refused), ["barred@example.com"])

    def test_source_text_over_the_api_cannot_require(self):
        status, _, body = self.server.api("PUT", "/api/v1/scenario", {"source": SCENARIO})
        self.assertEqual(status, 422, body)
        self.assertIn("require 'lib.policy': modules are found beside the script's file",
                      body["error"])
        self.assertIn('switch by file name, {"name": "/path/to/file.lua"}', body["error"])
        # Also where only a hook requires: it would fail every session.
        in_hook = "function on_rcpt(s, r)\n  local p = require('lib.policy')\nend\n"
        status, _, body = self.server.api("PUT", "/api/v1/scenario", {"source": in_hook})
        self.assertEqual(status, 422, body)
        self.assertIn("api.lua:2: require 'lib.policy'", body["error"])


if __name__ == "__main__":
    unittest.main()
