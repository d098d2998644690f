"""The example CI workflows (examples/ci), as a project that copies them would run them: with
smtpfault checked out beside the project in ./smtpfault. Both run the same script and hand its
report to the CI system; the command passes against the sample mailer and writes a JUnit report
that validates."""
import os
import shlex
import subprocess
import tempfile
import unittest

import yaml

from smtpfault_server import binary_path, server_environment
from catalogue_case import assert_valid_junit

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
EXAMPLES = os.path.join(ROOT, "examples", "ci")
REPORT = "smtpfault-report.xml"


def load(name):
    with open(os.path.join(EXAMPLES, name)) as f:
        return yaml.safe_load(f)


def workflow_variables():
    """The variables both workflows set for their jobs: the CI system passes them on to the
    script, and so to smtpfault."""
    variables = dict(load("github-actions.yml").get("env", {}))
    variables.update(load("gitlab-ci.yml")["mail-faults"].get("variables", {}))
    return {k: str(v) for k, v in variables.items()}


class WorkflowFiles(unittest.TestCase):
    def test_both_workflows_fetch_smtpfault_run_the_script_and_hand_its_report_to_ci(self):
        github = load("github-actions.yml")
        steps = github["jobs"]["mail-faults"]["steps"]
        runs = [s["run"] for s in steps if "run" in s]
        self.assertEqual(runs[-1], self.command())
        uses = [(s["uses"].split("@")[0], s.get("with", {})) for s in steps if "uses" in s]
        checkouts = [w for name, w in uses if name == "actions/checkout"]
        self.assertEqual(checkouts[1], {"repository": "${{ env.MAIL_FAULTS_REPOSITORY }}",
                                        "path": "smtpfault"})
        by_name = dict(uses)
        self.assertEqual(by_name["mikepenz/action-junit-report"]["report_paths"], REPORT)
        self.assertEqual(by_name["actions/upload-artifact"]["path"], REPORT)
        self.assertEqual(github["permissions"]["checks"], "write")
        gitlab = load("gitlab-ci.yml")["mail-faults"]
        self.assertIn('git clone --depth 1 "$MAIL_FAULTS_REPOSITORY" smtpfault', gitlab["script"])
        self.assertEqual(gitlab["script"][-1], self.command())
        self.assertEqual(gitlab["artifacts"]["reports"]["junit"], REPORT)

    def command(self):
        return ("smtpfault/examples/ci/mail-faults.sh -- "
                "/usr/bin/python3 smtpfault/examples/mailers/careful.py")

    def test_the_workflow_command_passes_and_writes_a_valid_report(self):
        argv = shlex.split(self.command())
        # A few scenarios are enough here: test_catalogue runs the whole catalogue.
        cut = argv.index("--")
        argv[cut:cut] = ["--scenario", "greylist", "--scenario", "starttls-stripped"]
        with tempfile.TemporaryDirectory() as project:
            # The user's project, with smtpfault checked out beside its files.
            os.symlink(ROOT, os.path.join(project, "smtpfault"))
            report = os.path.join(project, REPORT)
            env = server_environment({"SMTPFAULT": binary_path(), **workflow_variables()})
            r = subprocess.run(argv, cwd=project, env=env, capture_output=True, text=True,
                               timeout=120)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertIn("2 passed, 0 failed", r.stdout)
            assert_valid_junit(self, report)


if __name__ == "__main__":
    unittest.main()
