"""The container image and docker-compose example, checked without a Docker engine (SPEC
section 7): docker-compose validates docker-compose.yml; the Dockerfile's shape (multi-stage,
non-root, ports, HEALTHCHECK) and its runtime packages against what the binary links; and the
binary run as the image runs it (the Dockerfile's ENV only, 0.0.0.0 listeners, no flags) stops
within 1 s of SIGTERM with sessions open, answering 421 and keeping every stored message.
"""

import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest

from smtpfault_server import SmtpfaultServer, binary_path, verified_starttls

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DOCKERFILE = os.path.join(ROOT, "Dockerfile")
# In debian:12-slim already (apt itself needs them).
BASE_PACKAGES = {"libc6", "libstdc++6", "libgcc-s1"}


def dockerfile_text():
    with open(DOCKERFILE, encoding="utf-8") as f:
        # Join continuation lines so each instruction is one line.
        return re.sub(r"\\\n", " ", f.read())


def stages(text):
    """[(FROM line, [instructions])] per build stage."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            out.append((line, []))
        elif out:
            out[-1][1].append(line)
    return out


def image_environment(text):
    """The ENV of the runtime stage as a dict."""
    env = {}
    for ins in stages(text)[-1][1]:
        if ins.upper().startswith("ENV "):
            for k, v in re.findall(r"(\w+)=(\S*)", ins[4:]):
                env[k] = v
    return env


class ComposeTest(unittest.TestCase):
    def test_docker_compose_config_validates(self):
        if shutil.which("docker-compose") is None:
            self.skipTest("docker-compose is not installed (ci/install-deps.sh --test installs it)")
        run = subprocess.run(["docker-compose", "-f", os.path.join(ROOT, "docker-compose.yml"),
                              "config", "-q"], cwd=ROOT, capture_output=True, timeout=60)
        self.assertEqual(run.returncode, 0, run.stderr.decode(errors="replace"))

    def test_compose_mounts_scenarios_and_publishes_the_api(self):
        with open(os.path.join(ROOT, "docker-compose.yml"), encoding="utf-8") as f:
            text = f.read()
        self.assertRegex(text, r":/scenarios(:ro)?\b")
        self.assertIn('"8025:8025"', text)
        self.assertIn("condition: service_healthy", text)
        self.assertTrue(os.path.exists(os.path.join(ROOT, "examples", "compose-app",
                                                    "send_and_check.py")))


    def test_the_example_app_passes_against_the_compose_scenario_with_a_token(self):
        # What `docker-compose up` runs, without Docker: the app against magic-addresses, with
        # the API token set on both sides as docker-compose.yml's comments say.
        srv = SmtpfaultServer("--scenario", "magic-addresses", api_token="change-me").start()
        self.addCleanup(srv.cleanup)
        self.addCleanup(srv.stop)
        env = dict(os.environ, SMTP_HOST=srv.host, SMTP_PORT=str(srv.port),
                   SMTPFAULT_API="127.0.0.1:%d" % srv.api_port, SMTPFAULT_API_TOKEN="change-me")
        app = os.path.join(ROOT, "examples", "compose-app", "send_and_check.py")
        run = subprocess.run(["/usr/bin/python3", app], capture_output=True, text=True,
                             timeout=60, env=env)
        self.assertEqual(run.returncode, 0, run.stdout + run.stderr)


class DockerfileTest(unittest.TestCase):
    def setUp(self):
        self.text = dockerfile_text()
        self.stages = stages(self.text)

    def test_multi_stage_debian_build_and_slim_runtime(self):
        self.assertGreaterEqual(len(self.stages), 2)
        self.assertRegex(self.stages[0][0], r"^FROM debian:12 AS \w+$")
        self.assertTrue(any("ci/install-deps.sh" in i for i in self.stages[0][1]))
        self.assertEqual(self.stages[-1][0], "FROM debian:12-slim")

    def test_runtime_shape(self):
        runtime = self.stages[-1][1]
        users = [i.split()[1] for i in runtime if i.upper().startswith("USER ")]
        self.assertTrue(users and users[-1] not in ("root", "0"), users)
        expose = [i for i in runtime if i.upper().startswith("EXPOSE ")]
        self.assertEqual(expose, ["EXPOSE 2525 2465 8025"])
        health = [i for i in runtime if i.upper().startswith("HEALTHCHECK ")]
        self.assertEqual(len(health), 1)
        self.assertTrue(health[0].endswith('CMD ["smtpfault", "healthcheck"]'), health)
        # The first probe comes one interval after start: a compose app waiting for
        # service_healthy should not wait 10 s for a server ready in milliseconds.
        interval = re.search(r"--interval=(\d+)s", health[0])
        self.assertTrue(interval and int(interval.group(1)) <= 2, health)
        # Docker kills a probe at its --timeout: the probe's own must end first, with its reason.
        docker_timeout = float(re.search(r"--timeout=([\d.]+)s", health[0]).group(1))
        probe_timeout = float(image_environment(self.text).get("SMTPFAULT_HEALTHCHECK_TIMEOUT", 3))
        self.assertLess(probe_timeout, docker_timeout, health)
        self.assertTrue(any("/scenarios" in i for i in runtime))
        env = image_environment(self.text)
        self.assertEqual(env["SMTPFAULT_LISTEN"], "0.0.0.0:2525")
        self.assertEqual(env["SMTPFAULT_TLS_LISTEN"], "0.0.0.0:2465")
        self.assertEqual(env["SMTPFAULT_API"], "0.0.0.0:8025")

    def test_runtime_packages_cover_what_the_binary_links(self):
        if shutil.which("ldd") is None or shutil.which("dpkg") is None:
            self.skipTest("needs ldd and dpkg")
        installs = " ".join(i for i in self.stages[-1][1] if "apt-get install" in i)
        declared = set(re.findall(r"\b(lib[\w.+-]+)", installs))
        if shutil.which("readelf") is None:
            self.skipTest("needs readelf")
        # Direct dependencies only: apt installs what those depend on.
        dynamic = subprocess.run(["readelf", "-d", binary_path()], capture_output=True, text=True,
                                 check=True).stdout
        direct = set(re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", dynamic))
        if any(re.match(r"lib[atlu]+san\.", d) for d in direct):
            # make sanitize: other link flags, other libraries; the image is a Release build.
            self.skipTest("sanitizer build")
        ldd = subprocess.run(["ldd", binary_path()], capture_output=True, text=True, check=True)
        needed = set()
        for name, path in re.findall(r"^\s*(\S+) => (/\S+)", ldd.stdout, re.M):
            if name not in direct:
                continue
            owner = subprocess.run(["dpkg", "-S", os.path.realpath(path)], capture_output=True,
                                   text=True)
            if owner.returncode == 0:
                needed.add(owner.stdout.split(":")[0])
        self.assertTrue(needed, ldd.stdout)
        self.assertEqual(sorted(needed - declared - BASE_PACKAGES), [],
                         "runtime libraries missing from the Dockerfile's apt-get install")


class ContainerLikeRunTest(unittest.TestCase):
    """The binary as the image starts it: `smtpfault serve` and the image's ENV, nothing else
    (ports 0 instead of the fixed ones so tests can run in parallel)."""

    def start(self, store):
        env = image_environment(dockerfile_text())
        for key in ("SMTPFAULT_LISTEN", "SMTPFAULT_TLS_LISTEN", "SMTPFAULT_API"):
            env[key] = env[key].rsplit(":", 1)[0] + ":0"
        env["SMTPFAULT_STORE"] = store
        server = SmtpfaultServer(store=store, env=env)
        server.command = lambda: [binary_path(), "serve"]
        server.start()
        self.addCleanup(server.cleanup)
        return server

    def test_sigterm_with_open_sessions(self):
        store = tempfile.mkdtemp(prefix="smtpfault-container-")
        self.addCleanup(shutil.rmtree, store, True)
        server = self.start(store)
        self.assertTrue(any("0.0.0.0:" in l for l in server.banner), server.banner)

        done = server.connect()
        done.ehlo()
        done.cmd("MAIL FROM:<a@example.com>", expect=250)
        done.cmd("RCPT TO:<b@example.com>", expect=250)
        done.cmd("DATA", expect=354)
        body = b"Subject: kept\r\n\r\nacknowledged before SIGTERM\r\n"
        done.send(body + b".\r\n")
        queued = done.expect(250).queued_id
        mid_transaction = server.connect()
        mid_transaction.ehlo()
        mid_transaction.cmd("MAIL FROM:<a@example.com>", expect=250)
        idle = server.connect()

        start = time.monotonic()
        server.stop(expect_exit=0, timeout=5)   # SIGTERM, then the exit status must be 0
        self.assertLess(time.monotonic() - start, 1.0)
        for c in (done, mid_transaction, idle):
            r = c.reply(timeout=2)
            self.assertEqual((r.code, r.lines[0][:5]), (421, "4.3.2"))
            c.close()
        stored = server.message(queued)
        self.assertEqual(stored.data, body)
        self.assertEqual(stored.recipients, ["b@example.com"])

    def test_the_certificate_verifies_under_the_compose_service_name(self):
        store = tempfile.mkdtemp(prefix="smtpfault-container-")
        self.addCleanup(shutil.rmtree, store, True)
        server = self.start(store)
        for name in ("smtpfault", "smtpfault.test"):
            self.assertEqual(verified_starttls(server, name), 250, name)

    def test_healthcheck_reads_the_same_environment(self):
        store = tempfile.mkdtemp(prefix="smtpfault-container-")
        self.addCleanup(shutil.rmtree, store, True)
        server = self.start(store)
        env = {k: v for k, v in os.environ.items() if not k.startswith("SMTPFAULT_")}
        env.update(image_environment(dockerfile_text()))
        env["SMTPFAULT_API"] = "0.0.0.0:%d" % server.api_port
        run = subprocess.run([binary_path(), "healthcheck"], env=env, capture_output=True,
                             timeout=10)
        self.assertEqual(run.returncode, 0, run.stderr)
        server.stop()
        run = subprocess.run([binary_path(), "healthcheck", "--timeout", "1"], env=env,
                             capture_output=True, timeout=10)
        self.assertEqual(run.returncode, 1, run.stderr)


if __name__ == "__main__":
    unittest.main()
