"""What the tests of `smtpfault test` share: the catalogue's folder, the fixed seed and time
scale, and running the command with a mailer to read its report's verdicts."""

import json
import os
import shutil
import subprocess
import tempfile

from smtpfault_server import binary_path, server_environment

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SCENARIOS = os.path.join(ROOT, "scenarios")
PYTHON = "/usr/bin/python3"
TIME_SCALE = "0.02"
SEED = "4242"
# The start of a Python mailer given as code: an smtplib session on the scenario's server, as s.
CONNECTED = ("import os, smtplib\n"
             "s = smtplib.SMTP(os.environ['SMTP_HOST'], int(os.environ['SMTP_PORT']))\n")


def run_test(args, timeout=170, stdin=None):
    """Runs `smtpfault test ARGS` (stdin: a file object or None); returns (exit status, stdout,
    stderr)."""
    p = subprocess.run([binary_path(), "test"] + args, env=server_environment(), cwd=ROOT,
                       capture_output=True, text=True, timeout=timeout, stdin=stdin)
    return p.returncode, p.stdout, p.stderr


def verdicts(json_path):
    """{scenario name: result} from a JSON report (names without directory and .lua)."""
    with open(json_path, encoding="utf-8") as f:
        doc = json.load(f)
    out = {}
    for r in doc["results"]:
        name = os.path.basename(r["scenario"])
        out[name[:-4] if name.endswith(".lua") else name] = r
    return out


def scratch_folder(test):
    """A folder of the test's own, removed when the test ends."""
    folder = tempfile.mkdtemp(prefix="catalogue-")
    test.addCleanup(shutil.rmtree, folder, True)
    return folder


def scratch_path(test, name):
    """A path named name in a folder of the test's own."""
    return os.path.join(scratch_folder(test), name)


def judge_mailer(test, scenario, mailer, *extra):
    """Runs `smtpfault test --scenario SCENARIO` on a Python mailer given as code; returns (exit
    status, the scenario's result, output)."""
    json_path = scratch_path(test, "report.json")
    status, out, err = run_test(["--scenario", scenario, *extra, "--json", json_path, "--",
                                 PYTHON, "-c", mailer], timeout=120)
    return status, verdicts(json_path)[scenario], out + err


def assert_valid_junit(test, path):
    """Fails `test` unless the JUnit report at path validates against the Jenkins/Ant schema
    (fixtures/junit/junit.xsd) that CI systems read; skips it without xmllint."""
    xmllint = shutil.which("xmllint")
    if not xmllint:
        test.skipTest("xmllint is not installed (Debian package libxml2-utils)")
    xsd = os.path.join(ROOT, "fixtures", "junit", "junit.xsd")
    p = subprocess.run([xmllint, "--noout", "--schema", xsd, path], capture_output=True,
                       text=True, timeout=60)
    test.assertEqual(p.returncode, 0, p.stderr)
    test.assertIn("validates", p.stderr)
