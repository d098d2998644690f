"""Start the real smtpfault binary for integration tests and talk to it.

The binary comes from $SMTPFAULT_BIN (set by CTest). Every wait here has a deadline and waits
for an event (a banner line, a transcript line, a stored message, a reply), never a fixed sleep.
"""

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request

from raw_client import RawClient

# Every command the tests start reads /dev/null unless a test gives it input: `smtpfault test`
# copies a pipe on its stdin for each scenario's command, and whatever stdin the test run was
# given (a terminal, a CI runner's idle pipe) must not be what it copies.
_null = os.open(os.devnull, os.O_RDONLY)
os.dup2(_null, 0)
os.close(_null)

START_TIMEOUT = 10.0
TEST_CA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "fixtures", "certs",
                       "test-ca.pem")
LISTEN_RE = re.compile(r"^\s*listening: ([sl]mtps?)\s+(\S+):(\d+)\s*$")
API_LISTEN_RE = re.compile(r"^\s*listening: http\s+(\S+):(\d+)\b")


def binary_path():
    path = os.environ.get("SMTPFAULT_BIN")
    if not path:
        raise unittest.SkipTest("SMTPFAULT_BIN is not set (run through ctest)")
    return path


def sanitized_build():
    """True for a make sanitize binary (ASan or TSan): its own allocator, its own timing."""
    with open(binary_path(), "rb") as f:
        data = f.read()
    return b"__asan_init" in data or b"__tsan_init" in data


def write_file(folder, name, text):
    """Writes text to folder/name and returns the path: scenarios, mailers and configurations
    that a test makes up."""
    path = os.path.join(folder, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def server_with_scenario(test, lua, *args, **kwargs):
    """A started SmtpfaultServer running the scenario `lua` (its text), stopped and cleaned up
    when the test ends."""
    folder = tempfile.mkdtemp(prefix="smtpfault-scenario-")
    test.addCleanup(shutil.rmtree, folder, True)
    server = SmtpfaultServer("--scenario", write_file(folder, "scenario.lua", lua), *args,
                             **kwargs).start()
    test.addCleanup(server.cleanup)
    test.addCleanup(server.stop)
    return server


def verified_starttls(server, name):
    """STARTTLS with python's smtplib, verifying the certificate against the test CA as `name`;
    the EHLO code after it (an ssl.SSLCertVerificationError when it does not verify)."""
    import smtplib
    ctx = ssl.create_default_context(cafile=TEST_CA)
    with smtplib.SMTP(server.host, server.port, timeout=10) as s:
        s._host = name  # the name smtplib checks the certificate against
        s.ehlo()
        s.starttls(context=ctx)
        return s.ehlo()[0]


def server_environment(extra=None):
    """The child's environment without SMTPFAULT_* variables: the server reads every one of
    them as configuration and refuses unknown ones (SMTPFAULT_BIN is ours, not its).
    SERVER_THREADS=N (set for the tests that also run under ThreadSanitizer) gives every server
    N I/O threads, whatever the machine's default."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMTPFAULT_")}
    if os.environ.get("SERVER_THREADS"):
        env["SMTPFAULT_THREADS"] = os.environ["SERVER_THREADS"]
    env.update(extra or {})
    return env


def run_binary(*args, env=None, timeout=30, stdin=None):
    """Runs `smtpfault ARGS` to its end with the tests' environment (plus env) and text stdin;
    returns the CompletedProcess with its output."""
    return subprocess.run([binary_path(), *args], capture_output=True, text=True, timeout=timeout,
                          env=server_environment(env), input=stdin)


@contextlib.contextmanager
def refusing_port():
    """A loopback port that refuses connections: bound and not listening, and held for the
    block, so that no other server takes it meanwhile."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]


def assert_not_sent(test, server, result, why):
    """`smtpfault send` (its CompletedProcess `result`) refused before MAIL, for every recipient
    alike, saying `why`: exit 1, nothing stored, and the session ended with QUIT."""
    test.assertEqual(result.returncode, 1, result.stdout + result.stderr)
    test.assertIn("not delivered: " + why, result.stderr)
    test.assertNotIn("C: MAIL", result.stdout)
    test.assertIn("C: QUIT", result.stdout)
    server.wait_for_line(r"C: QUIT")
    test.assertEqual(server.messages(), [])


class StoredMessage:
    """One captured message: the .eml bytes and the parsed .json envelope."""

    def __init__(self, store_dir, message_id):
        self.id = message_id
        with open(os.path.join(store_dir, message_id + ".eml"), "rb") as f:
            self.data = f.read()
        with open(os.path.join(store_dir, message_id + ".json"), "r", encoding="utf-8") as f:
            self.meta = json.load(f)

    @property
    def recipients(self):
        return [r["address"] for r in self.meta["recipients"]]

    @property
    def anomalies(self):
        return [(a["kind"], a["offset"]) for a in self.meta["anomalies"]]

    @property
    def session(self):
        return self.meta["session"]

    def __repr__(self):
        return "StoredMessage(%s, %d octets)" % (self.id, len(self.data))


class SmtpfaultServer:
    """`smtpfault serve` on ephemeral ports with a private --store directory.

    Use as a context manager, or call start()/stop(). stop() sends SIGTERM and checks the exit
    status (0 unless told otherwise).
    """

    def __init__(self, *args, lmtp=False, store=None, api_token=None, env=None):
        """args: extra `serve` flags. The HTTP API listens on an ephemeral loopback port unless
        args carry --api; api_token sets --api-token; env adds variables for the child."""
        self.args = list(args)
        self.lmtp = lmtp
        self.api_token = api_token
        self.extra_env = dict(env or {})
        self.api_port = None
        self._own_store = store is None
        self.store = store or tempfile.mkdtemp(prefix="smtpfault-store-")
        self.proc = None
        self.host = "127.0.0.1"
        self.port = None
        self.tls_port = None
        self.banner = []
        self.returncode = None
        self.stderr_text = ""
        self._lines = []
        self._cond = threading.Condition()
        self._eof = False
        self._reader = None
        self._stderr_reader = None
        self._stderr_chunks = []

    # --- lifecycle -------------------------------------------------------------------------

    def command(self):
        cmd = [binary_path(), "serve", "--listen", "127.0.0.1:0", "--tls-listen", "127.0.0.1:0",
               "--store", self.store]
        if self.lmtp:
            cmd.append("--lmtp")
        if not any(a == "--api" or a.startswith("--api=") for a in self.args):
            cmd += ["--api", "127.0.0.1:0"]
        if self.api_token is not None:
            cmd += ["--api-token", self.api_token]
        return cmd + self.args

    def start(self, timeout=START_TIMEOUT):
        self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env=server_environment(self.extra_env))
        self._reader = threading.Thread(target=self._drain_stdout, daemon=True)
        self._reader.start()
        self._stderr_reader = threading.Thread(target=self._drain_stderr, daemon=True)
        self._stderr_reader.start()
        deadline = time.monotonic() + timeout
        with self._cond:
            while self.port is None or self.tls_port is None or self.api_port is None:
                remaining = deadline - time.monotonic()
                if self._eof or remaining <= 0:
                    break
                self._cond.wait(remaining)
            ready = (self.port is not None and self.tls_port is not None
                     and self.api_port is not None)
        if not ready:
            self._kill()
            raise RuntimeError("smtpfault did not print its listening lines within %.0fs "
                               "(exit status %r); stdout=%r stderr=%r"
                               % (timeout, self.returncode, self.transcript(), self.stderr_text))
        return self

    def stop(self, expect_exit=0, timeout=5.0):
        """SIGTERM, wait for exit; returns the exit status and checks it against expect_exit."""
        if self.proc is None:
            return self.returncode
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.returncode = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(self._overrun_report(timeout)) from None
        finally:
            self._join_readers()
        self.proc = None
        if expect_exit is not None and self.returncode != expect_exit:
            raise AssertionError("smtpfault exited with %r, expected %r; stderr=%r"
                                 % (self.returncode, expect_exit, self.stderr_text))
        return self.returncode

    def _overrun_report(self, timeout, grace=30.0):
        """A stop that overran: whether it ended later (a sanitizer report still being written
        ends it with its own status) and the last of what it printed, so the cause is seen."""
        try:
            status = "exited with %r after a further %.0fs or less" % (self.proc.wait(grace), grace)
        except subprocess.TimeoutExpired:
            status = "was still running %.0fs later and was killed" % grace
        self._kill()
        return ("smtpfault did not exit within %.1fs of SIGTERM; it %s; last stdout lines=%r; "
                "stderr=%r" % (timeout, status, self.transcript()[-20:], self.stderr_text[-4000:]))

    def cleanup(self):
        if self.proc is not None:
            self._kill()
        if self._own_store:
            shutil.rmtree(self.store, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, exc_type, exc, tb):
        try:
            if self.proc is not None:
                self.stop(expect_exit=0 if exc_type is None else None)
        finally:
            self.cleanup()
        return False

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def _kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        if self.proc is not None:
            self.returncode = self.proc.wait()
        self._join_readers()
        self.proc = None

    def _join_readers(self):
        for t in (self._reader, self._stderr_reader):
            if t is not None:
                t.join(5)
        if self.proc is not None:
            for pipe in (self.proc.stdout, self.proc.stderr):
                if pipe is not None:
                    pipe.close()
        self.stderr_text = b"".join(self._stderr_chunks).decode("utf-8", "replace")

    def _drain_stdout(self):
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self._cond:
                self._lines.append(line)
                if self.port is None or self.tls_port is None or self.api_port is None:
                    if line.startswith("{"):
                        # --log-format json: banner lines are {"ts": ..., "info": "..."}.
                        try:
                            line = json.loads(line).get("info", line)
                        except ValueError:
                            pass
                    self.banner.append(line)
                    a = API_LISTEN_RE.match(line)
                    if a and self.api_port is None:
                        self.api_port = int(a.group(2))
                    m = LISTEN_RE.match(line)
                    if m and m.group(1) in ("smtp", "lmtp") and self.port is None:
                        self.port = int(m.group(3))
                    elif m and m.group(1) in ("smtps", "lmtps") and self.tls_port is None:
                        self.tls_port = int(m.group(3))
                self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def _drain_stderr(self):
        for chunk in iter(lambda: self.proc.stderr.read1(4096), b""):
            self._stderr_chunks.append(chunk)

    # --- transcript ------------------------------------------------------------------------

    def transcript(self):
        with self._cond:
            return list(self._lines)

    def wait_for_line(self, pattern, timeout=5.0, start=0):
        """Waits until a stdout line (from index `start`) matches the regex; returns it."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            # Each line is looked at once: the reader wakes this up for every line it adds, and
            # a session can print a hundred thousand of them.
            i = start
            while True:
                while i < len(self._lines):
                    line = self._lines[i]
                    i += 1
                    if rx.search(line):
                        return line
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._eof:
                    raise AssertionError("no transcript line matching %r within %.1fs; got:\n%s"
                                         % (pattern, timeout, "\n".join(self._lines[-40:])))
                self._cond.wait(remaining)

    def session_lines(self, session_id):
        return [l for l in self.transcript() if " %s " % session_id in l]

    def session_of(self, client, timeout=5.0):
        """The session id the server gave a RawClient (matched by the client's local port)."""
        port = client.local_port
        line = self.wait_for_line(r" \*: connect from [^ ]*:%d\b" % port, timeout)
        return line.split()[1]

    def finished_session(self, session_id, timeout=5.0):
        """Waits until the session has ended, then returns all of its transcript lines."""
        self.wait_for_line(r" %s \*: session ended" % re.escape(session_id), timeout)
        return self.session_lines(session_id)

    # --- captured messages -----------------------------------------------------------------

    def message_ids(self):
        names = [n for n in os.listdir(self.store) if n.endswith(".json")]
        return sorted(n[:-len(".json")] for n in names)

    def messages(self):
        return [StoredMessage(self.store, i) for i in self.message_ids()]

    def wait_for_messages(self, n, timeout=10.0, poll=0.02):
        """Polls the store until at least n messages are complete (.json present)."""
        deadline = time.monotonic() + timeout
        while True:
            ids = self.message_ids()
            if len(ids) >= n:
                return [StoredMessage(self.store, i) for i in ids]
            if time.monotonic() >= deadline:
                raise AssertionError("expected %d stored message(s) within %.1fs, found %d"
                                     % (n, timeout, len(ids)))
            time.sleep(poll)

    def message(self, message_id):
        return StoredMessage(self.store, message_id)

    # --- HTTP API --------------------------------------------------------------------------

    def api_url(self, path):
        return "http://%s:%d%s" % (self.host, self.api_port, path)

    def api(self, method, path, body=None, token=None, timeout=10.0, headers=None):
        """One API request with urllib; returns (status, headers, body). body may be a dict
        (sent as JSON), str or bytes; the reply body is parsed when it is JSON. token defaults
        to the server's --api-token; pass "" to send none."""
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = body.encode()
        req = urllib.request.Request(self.api_url(path), data=body, method=method)
        token = self.api_token if token is None else token
        if token:
            req.add_header("Authorization", "Bearer " + token)
        if body is not None:
            req.add_header("Content-Type", "application/json")
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                status, hdrs, raw = r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            status, hdrs, raw = e.code, e.headers, e.read()
        if (hdrs.get("Content-Type") or "").startswith("application/json"):
            return status, hdrs, json.loads(raw.decode("utf-8"))
        return status, hdrs, raw

    # --- clients ---------------------------------------------------------------------------

    def connect(self, tls=False, timeout=5.0, greeting=True):
        """A raw client on the plain port (or the implicit-TLS port with tls=True)."""
        return RawClient.connect(self.host, self.tls_port if tls else self.port, tls=tls,
                                 timeout=timeout, greeting=greeting)


def send_message(server, data, mail_from="sender@example.com", rcpts=("rcpt@example.com",),
                 ehlo=True):
    """A complete plain transaction with raw DATA bytes (already dot-stuffed, without the
    final '.\\r\\n'); returns the stored message."""
    with server.connect() as c:
        c.cmd(("EHLO" if ehlo else "HELO") + " client.test", expect=250)
        c.cmd("MAIL FROM:<%s>" % mail_from, expect=250)
        for r in rcpts:
            c.cmd("RCPT TO:<%s>" % r, expect=250)
        c.cmd("DATA", expect=354)
        c.send(data + b".\r\n")
        done = c.expect(250)
        c.cmd("QUIT", expect=221)
    return server.message(done.queued_id)


class ServerTestCase(unittest.TestCase):
    """One server per test class; subclasses set SERVER_ARGS / LMTP."""

    SERVER_ARGS = ()
    LMTP = False
    TOKEN = None   # --api-token

    @classmethod
    def setUpClass(cls):
        cls.server = SmtpfaultServer(*cls.SERVER_ARGS, lmtp=cls.LMTP, api_token=cls.TOKEN).start()

    @classmethod
    def tearDownClass(cls):
        try:
            cls.server.stop(expect_exit=0)
        finally:
            cls.server.cleanup()

    def assert_still_serving(self, marker=None):
        """A normal delivery must still work; checks the stored bytes."""
        body = ("Subject: still serving %s\r\n\r\nhello after %s\r\n"
                % (marker or self.id(), marker or self.id())).encode()
        msg = send_message(self.server, body)
        self.assertEqual(msg.data, body)
        return msg
