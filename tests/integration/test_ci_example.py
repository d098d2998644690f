"""The example CI workflows (examples/ci): both run the same script, report to the file they
hand to the CI system, and the command they run passes against the sample mailer and writes a
JUnit report that validates."""
import os
import shlex
import shutil
import subprocess
import tempfile
import unittest

import yaml

from smtpfault_server import binary_path, server_environment

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
EXAMPLES = os.path.join(ROOT, "examples", "ci")
REPORT = "smtpfault-report.xml"


def load(name):
    with open(os.path.join(EXAMPLES, name)) as f:
        return yaml.safe_load(f)


def github_steps():
    return load("github-actions.yml")["jobs"]["mail-faults"]["steps"]


class WorkflowFiles(unittest.TestCase):
    def test_both_workflows_run_the_script_and_hand_its_report_to_ci(self):
        runs = [s["run"] for s in github_steps() if "run" in s]
        self.assertIn(self.command(), runs)
        uses = {s["uses"].split("@")[0]: s.get("with", {}) for s in github_steps() if "uses" in s}
        self.assertEqual(uses["mikepenz/action-junit-report"]["report_paths"], REPORT)
        self.assertEqual(uses["actions/upload-artifact"]["path"], REPORT)
        gitlab = load("gitlab-ci.yml")["mail-faults"]
        self.assertEqual(gitlab["script"], [self.command()])
        self.assertEqual(gitlab["artifacts"]["reports"]["junit"], REPORT)

    def command(self):
        return "examples/ci/mail-faults.sh -- /usr/bin/python3 examples/mailers/careful.py"

    def test_the_workflow_command_passes_and_writes_a_valid_report(self):
        argv = shlex.split(self.command())
        # A few scenarios are enough here: test_catalogue runs the whole catalogue.
        cut = argv.index("--")
        argv[cut:cut] = ["--scenario", "greylist", "--scenario", "starttls-stripped"]
        with tempfile.TemporaryDirectory() as tmp:
            report = os.path.join(tmp, REPORT)
            env = server_environment({"SMTPFAULT": binary_path(), "REPORT": report})
            r = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True,
                               timeout=120)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertIn("2 passed, 0 failed", r.stdout)
            xmllint = shutil.which("xmllint")
            if not xmllint:
                self.skipTest("xmllint is not installed (Debian package libxml2-utils)")
            xsd = os.path.join(ROOT, "fixtures", "junit", "junit.xsd")
            v = subprocess.run([xmllint, "--noout", "--schema", xsd, report],
                               capture_output=True, text=True)
            self.assertEqual(v.returncode, 0, v.stderr)


if __name__ == "__main__":
    unittest.main()
