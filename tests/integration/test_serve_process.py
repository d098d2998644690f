"""`smtpfault serve` as a process: several listeners on IPv4 and IPv6 and the errors of taken
or misgiven ports, running without an HTTP API, its process name, its heap on huge pages."""

import os
import re
import smtplib
import signal
import socket
import subprocess
import tempfile
import time
import unittest

from smtpfault_server import SmtpfaultServer, binary_path, sanitized_build, server_environment
from smtpfault_server import run_binary as run


def ipv6_loopback_available():
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


class Listeners(unittest.TestCase):
    @unittest.skipUnless(ipv6_loopback_available(), "no IPv6 loopback in this environment")
    def test_ipv4_and_ipv6_listeners_all_serve(self):
        srv = SmtpfaultServer("--listen", "127.0.0.1:0", "--listen", "[::1]:0").start()
        try:
            ports = [l for l in srv.banner if "listening: smtp " in l]
            self.assertTrue(any("127.0.0.1" in l for l in ports), srv.banner)
            v6 = [l for l in ports if "[::1]" in l][0]
            port = int(v6.rsplit(":", 1)[1])
            with socket.create_connection(("::1", port), timeout=5) as c:
                self.assertTrue(c.recv(100).startswith(b"220 "))
        finally:
            srv.stop()
            srv.cleanup()

    @unittest.skipUnless(ipv6_loopback_available(), "no IPv6 loopback in this environment")
    def test_the_banner_suggests_the_loopback_of_a_wildcard_listeners_family(self):
        for wildcard, loopback in (("[::]", "[::1]"), ("0.0.0.0", "127.0.0.1")):
            proc = subprocess.Popen([binary_path(), "serve", "--listen", wildcard + ":0",
                                     "--tls-listen", "", "--api", ""], stdout=subprocess.PIPE,
                                    stderr=subprocess.DEVNULL, text=True,
                                    env=server_environment())
            try:
                hint = next(l for l in proc.stdout if "try: swaks" in l)
            finally:
                proc.terminate()
                proc.wait(10)
            self.assertRegex(hint, r"--server %s:\d+ " % re.escape(loopback))

    @unittest.skipUnless(ipv6_loopback_available(), "no IPv6 loopback in this environment")
    def test_an_ipv6_wildcard_is_ipv6_alone_for_smtp_and_the_api_alike(self):
        # An IPv6-only socket leaves its port number free for IPv4, where a test running beside
        # this one may happen to listen: a connection to 127.0.0.1 there is tried again with new
        # ports. A dual-stack listener would take it every time.
        for attempt in range(3):
            taken_over_ipv4 = self.ipv4_connections_to_an_ipv6_wildcard_server()
            if not taken_over_ipv4:
                return
        self.fail("127.0.0.1 reached the ports of a server listening on [::]: %s" % taken_over_ipv4)

    def ipv4_connections_to_an_ipv6_wildcard_server(self):
        proc = subprocess.Popen([binary_path(), "serve", "--listen", "[::]:0", "--tls-listen", "",
                                 "--api", "[::]:0"], stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True, env=server_environment())
        try:
            ports = {}
            for line in proc.stdout:
                m = re.search(r"listening: (smtp|http) +\[::\]:(\d+)", line)
                if m:
                    ports[m.group(1)] = int(m.group(2))
                if len(ports) == 2:
                    break
            self.assertEqual(len(ports), 2)
            accepted = []
            for name, port in ports.items():
                with socket.create_connection(("::1", port), timeout=5):
                    pass
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=5).close()
                    accepted.append(name)
                except ConnectionRefusedError:
                    pass
            return accepted
        finally:
            proc.terminate()
            proc.wait(10)

    def test_a_host_name_where_an_address_belongs_is_a_configuration_error(self):
        # No name lookups: each address key takes an IP literal or "localhost", and says so.
        for flag in ("--listen", "--tls-listen", "--api"):
            r = run("serve", flag, "mail.example:2525", timeout=10)
            self.assertEqual(r.returncode, 2, (flag, r.stderr))
            self.assertIn("%s: 'mail.example:2525' is not an IP address" % flag, r.stderr)
        r = run("healthcheck", "--api", "mail.example:8025")
        self.assertEqual(r.returncode, 1)   # Docker reserves 2
        self.assertIn("api: 'mail.example:8025' is not an IP address", r.stderr)

    def test_a_port_another_server_listens_on_is_refused_with_several_threads(self):
        # Several I/O threads listen on one port with SO_REUSEPORT, which by itself would let a
        # second server join the first one's port and take half its mail.
        first = SmtpfaultServer("--threads", "2").start()
        try:
            taken = "127.0.0.1:%d" % first.port
            r = run("serve", "--threads", "2", "--listen", taken, "--tls-listen", "",
                    "--api", "", timeout=20)
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertIn("cannot listen on %s: Address already in use" % taken, r.stderr)
            with first.connect() as c:   # the first server still has its port to itself
                c.cmd("QUIT", expect=221)
        finally:
            first.stop()
            first.cleanup()

    def test_a_default_port_that_is_taken_is_named_as_a_default(self):
        # `--listen 127.0.0.1:0` alone still opens the default SMTPS port: a second such server
        # must hear that the port it cannot have is one it never asked for.
        holder = socket.socket()
        try:
            holder.bind(("127.0.0.1", 2465))
            holder.listen()
        except OSError:
            pass   # taken already: the server cannot have it either
        try:
            r = run("serve", "--listen", "127.0.0.1:0", "--api", "", timeout=20)
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertIn("cannot listen on 127.0.0.1:2465: Address already in use (tls_listen is "
                          "a default: give --tls-listen HOST:PORT, or --tls-listen '' for none)",
                          r.stderr)
            with socket.socket() as other:
                other.bind(("127.0.0.1", 0))
                other.listen()
                taken = "127.0.0.1:%d" % other.getsockname()[1]
                r = run("serve", "--listen", "127.0.0.1:0", "--api", "",
                        env={"SMTPFAULT_TLS_LISTEN": taken}, timeout=20)
                self.assertIn("cannot listen on %s: Address already in use (environment variable "
                              "SMTPFAULT_TLS_LISTEN)" % taken, r.stderr)
        finally:
            holder.close()

    def test_one_port_given_for_two_listeners_says_so(self):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        here = "127.0.0.1:%d" % port
        r = run("serve", "--listen", here, "--tls-listen", here, "--api", "", timeout=20)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("%s is given twice, for --listen and for --tls-listen: each port serves one "
                      "of them" % here, r.stderr)
        r = run("serve", "--listen", here, "--tls-listen", "", env={"SMTPFAULT_API": here},
                timeout=20)
        self.assertIn("%s is given twice, for --listen and for environment variable "
                      "SMTPFAULT_API" % here, r.stderr)
        r = run("serve", "--listen", here + "," + here, "--tls-listen", "", "--api", "",
                timeout=20)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("%s is given twice in --listen: name each address once" % here, r.stderr)
        # All zeros takes the port on every address: not "Address already in use" at bind.
        r = run("serve", "--listen", "0.0.0.0:%d" % port, "--tls-listen", here, "--api", "",
                timeout=20)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("0.0.0.0:%d (for --listen) and %s (for --tls-listen) share a port: an "
                      "address of all zeros takes that port on every address" % (port, here),
                      r.stderr)

    def test_a_taken_api_port_names_where_it_was_given(self):
        with socket.socket() as other:
            other.bind(("127.0.0.1", 0))
            other.listen()
            taken = "127.0.0.1:%d" % other.getsockname()[1]
            r = run("serve", "--listen", "127.0.0.1:0", "--tls-listen", "", "--api", taken,
                    timeout=20)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("cannot listen for the HTTP API on %s: Address already in use (--api)"
                      % taken, r.stderr)

    def test_a_server_starting_at_the_same_instant_on_the_port_is_refused(self):
        # Two servers starting together can both find the port free before either listens;
        # the first to start holds a claim on it (an abstract Unix socket, per network
        # namespace like the port itself) that the second cannot take. Held here by hand.
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        with socket.socket(socket.AF_UNIX) as claim:
            claim.bind("\0smtpfault listen 127.0.0.1:%d" % port)
            r = run("serve", "--threads", "2", "--listen", "127.0.0.1:%d" % port,
                    "--tls-listen", "", "--api", "", timeout=20)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("cannot listen on 127.0.0.1:%d: Address already in use" % port, r.stderr)


def listening_ports(pid):
    """TCP ports the process listens on: its socket inodes matched against /proc/net/tcp*."""
    inodes = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and fields[9] in inodes:   # 0A = LISTEN
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


class NoApi(unittest.TestCase):
    def test_empty_api_serves_smtp_without_an_http_listener(self):
        proc = subprocess.Popen([binary_path(), "serve", "--listen", "127.0.0.1:0",
                                 "--tls-listen", "", "--api", ""], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=server_environment())
        try:
            banner = []
            for line in proc.stdout:
                banner.append(line)
                if "try:" in line:
                    break
            text = "".join(banner)
            self.assertIn("no HTTP API", text)
            self.assertNotIn("http ", text)
            port = int(text.split("listening: smtp  127.0.0.1:")[1].split()[0])
            self.assertEqual(listening_ports(proc.pid), {port})
            with smtplib.SMTP("127.0.0.1", port, timeout=10) as s:
                s.sendmail("a@example.com", ["b@example.com"], b"Subject: no api\r\n\r\nhi\r\n")
        finally:
            proc.terminate()
            proc.communicate(timeout=10)
        self.assertEqual(proc.returncode, 0)

    def test_healthcheck_says_there_is_no_api_to_ask(self):
        r = run("healthcheck", env={"SMTPFAULT_API": ""})
        self.assertEqual(r.returncode, 1)
        self.assertEqual(run("healthcheck", "extra").returncode, 1)
        self.assertIn("no HTTP API", r.stderr)
        # Port 0 is any free port to serve; the healthcheck cannot know which one it got.
        r = run("healthcheck", env={"SMTPFAULT_API": "127.0.0.1:0"})
        self.assertEqual(r.returncode, 1)
        self.assertIn("SMTPFAULT_API: port 0 is any free port: healthcheck needs the port the "
                      "API listens on", r.stderr)
        r = run("healthcheck", "--api", "127.0.0.1:0")
        self.assertEqual(r.returncode, 1)
        self.assertIn("--api: bad address '127.0.0.1:0' (the port must be a number from 1 to "
                      "65535)", r.stderr)


class ProcessName(unittest.TestCase):
    def test_the_restarted_server_is_still_called_smtpfault(self):
        # serve re-executes itself once at start-up (huge pages, below; an empty GLIBC_TUNABLES
        # makes sure it does); pgrep -x, ps -C and killall go by the process name, which must
        # not become "exe".
        srv = SmtpfaultServer(env={"GLIBC_TUNABLES": ""}).start()
        try:
            with srv.connect() as c:
                c.cmd("EHLO x", expect=250)   # the process that answers is the restarted one
            with open("/proc/%d/comm" % srv.proc.pid) as f:
                self.assertEqual(f.read().strip(), os.path.basename(binary_path())[:15])
        finally:
            srv.stop()
            srv.cleanup()


def thp_mode():
    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled") as f:
            return f.read().split("[")[1].split("]")[0]
    except (OSError, IndexError):
        return None


@unittest.skipUnless(thp_mode() == "madvise", "glibc asks for huge pages only in madvise mode")
@unittest.skipIf(sanitized_build(), "a sanitizer's allocator replaces glibc's malloc")
class HugePageHeap(unittest.TestCase):
    """serve restarts itself once with glibc.malloc.hugetlb=1 (same PID), so glibc marks the heap
    for transparent huge pages (VmFlags "hg"); the user's own hugetlb choice wins."""

    def heap_flags(self, env):
        srv = SmtpfaultServer(env=env).start()
        try:
            with srv.connect() as c:
                c.cmd("EHLO x", expect=250)   # the process that answers is the restarted one
            with open("/proc/%d/smaps" % srv.proc.pid) as f:
                lines = f.read().splitlines()
            at = next(i for i, l in enumerate(lines) if l.endswith("[heap]"))
            return next(l for l in lines[at:] if l.startswith("VmFlags:")).split()[1:]
        finally:
            srv.stop()
            srv.cleanup()

    def test_heap_on_huge_pages_with_the_users_other_tunables(self):
        self.assertIn("hg", self.heap_flags({"GLIBC_TUNABLES": ""}))
        self.assertIn("hg", self.heap_flags({"GLIBC_TUNABLES": "glibc.malloc.tcache_count=9"}))

    def test_users_own_hugetlb_choice_wins(self):
        self.assertNotIn("hg", self.heap_flags({"GLIBC_TUNABLES": "glibc.malloc.hugetlb=0"}))


def writes_so_far(pid):
    """write(2)-family calls the process has made (/proc/PID/io); replies go out with sendto,
    which is not counted, so these are the transcript's writes to stdout."""
    with open("/proc/%d/io" % pid) as f:
        for line in f:
            if line.startswith("syscw:"):
                return int(line.split()[1])
    raise AssertionError("no syscw in /proc/%d/io" % pid)


class TranscriptOnStdout(unittest.TestCase):
    def test_a_pipelined_batch_is_logged_whole_in_a_few_writes(self):
        # 200 NOOPs in one segment make 400 transcript lines. They reach stdout together once the
        # batch has been answered: at most one write per 4 KiB of text, not one per line.
        srv = SmtpfaultServer().start()
        self.addCleanup(srv.cleanup)
        c = srv.connect()
        self.addCleanup(c.close)
        c.cmd("EHLO batch.test", expect=250)
        sid = srv.session_of(c)
        srv.wait_for_line(r" %s C: EHLO batch\.test$" % sid)
        before = writes_so_far(srv.proc.pid)
        c.send("NOOP\r\n" * 200)
        for _ in range(200):
            c.expect(250)
        c.cmd("QUIT", expect=221)
        lines = srv.finished_session(sid)
        writes = writes_so_far(srv.proc.pid) - before
        self.assertEqual(len([l for l in lines if l.endswith(" C: NOOP")]), 200)
        self.assertEqual(len([l for l in lines if l.endswith(" S: 250 2.0.0 Ok")]), 200)
        # The NOOPs' lines and the QUIT's (C, S, session ended): one write more for the QUIT.
        text = sum(len(l) + 1 for l in lines[-403:])
        self.assertLessEqual(writes, text // 4096 + 4, "%d writes for %d octets" % (writes, text))


class LogReaderGone(unittest.TestCase):
    def test_a_closed_log_pipe_does_not_stop_the_server(self):
        # `smtpfault serve | head -1`: SIGPIPE once ended the server in the middle of a session.
        proc = subprocess.Popen([binary_path(), "serve", "--listen", "127.0.0.1:0",
                                 "--tls-listen", "", "--api", ""], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=server_environment())
        try:
            port = None
            for line in proc.stdout:
                m = re.search(rb"listening: smtp +127\.0\.0\.1:(\d+)", line)
                if m:
                    port = int(m.group(1))
                    break
            proc.stdout.close()  # the reader goes away
            for n in range(2):
                with smtplib.SMTP("127.0.0.1", port, timeout=10) as c:
                    c.sendmail("a@example.com", ["b@example.com"], b"Subject: %d\r\n\r\nx\r\n" % n)
            self.assertIsNone(proc.poll(), "the server ended when its log reader went away")
        finally:
            proc.terminate()
            _, err = proc.communicate(timeout=10)
        self.assertEqual(proc.returncode, 0)
        self.assertEqual(err.decode().count("cannot write the log to standard output"), 1, err)


class StopSignals(unittest.TestCase):
    def test_a_stop_while_the_server_sets_itself_up_is_a_clean_stop(self):
        # The handler came after the set-up: a SIGTERM during it killed the process (status
        # 143; as PID 1 in a container it was ignored, and `docker stop` waited 10 s).
        with tempfile.TemporaryDirectory() as d:
            big = os.path.join(d, "big.lua")
            with open(big, "w") as f:   # 7 MB of Lua: seconds to load
                f.write("local t = {}\n" + "".join("t[%d] = %d\n" % (i, i)
                                                    for i in range(1, 400001)))
            proc = subprocess.Popen([binary_path(), "serve", "--listen", "127.0.0.1:0",
                                     "--tls-listen", "", "--api", "", "--scenario", big],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    env=server_environment())
            try:
                # The load takes about 2 s here: the signal comes during it, once the thread
                # that takes signals is there (or after 1 s, as it came before that thread was).
                for _ in range(100):
                    if len(os.listdir("/proc/%d/task" % proc.pid)) >= 2:
                        break
                    time.sleep(0.01)
                proc.send_signal(signal.SIGTERM)
                out, err = proc.communicate(timeout=20)
            finally:
                if proc.poll() is None:
                    proc.kill()
        self.assertEqual(proc.returncode, 0, err)
        self.assertIn(b"received SIGTERM, shutting down", out)
        self.assertNotIn(b"serving", out)

    def test_a_stop_while_a_configuration_pipe_is_waited_for_ends_the_process(self):
        # The signals were held from the start: Ctrl-C did nothing until the pipe gave the file.
        with tempfile.TemporaryDirectory() as d:
            fifo = os.path.join(d, "config.toml")
            os.mkfifo(fifo)
            proc = subprocess.Popen([binary_path(), "serve", "--config", fifo],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    env=server_environment())
            writer = None
            try:
                # Opening the write end succeeds once serve has the read end open: then it
                # waits in its read, for a file that never comes.
                deadline = time.monotonic() + 10
                while writer is None and time.monotonic() < deadline:
                    try:
                        writer = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
                    except OSError:
                        time.sleep(0.01)
                self.assertIsNotNone(writer, "serve never opened the configuration pipe")
                proc.send_signal(signal.SIGINT)
                proc.communicate(timeout=10)
            finally:
                if writer is not None:
                    os.close(writer)
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        self.assertEqual(proc.returncode, -signal.SIGINT)

    def test_sighup_stops_the_server_as_sigterm_does(self):
        # It ended the process at once: no 421 to open sessions, no "stopped" line.
        srv = SmtpfaultServer().start()
        self.addCleanup(srv.cleanup)
        with srv.connect() as c:
            c.ehlo()
            srv.proc.send_signal(signal.SIGHUP)
            self.assertEqual(c.expect(421).lines[0][:5], "4.3.2")
            srv.proc.wait(10)   # by itself: stop() below sends nothing to a process that ended
        self.assertEqual(srv.stop(expect_exit=0), 0)
        self.assertTrue(any("received SIGHUP, shutting down" in l for l in srv.transcript()))


class ScenarioParamsNamed(unittest.TestCase):
    def test_a_refused_parameter_names_where_it_was_given(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "p.toml")
            with open(path, "w") as f:
                f.write('scenario = "greylist"\nscenario_params = ["window=abc"]\n')
            r = run("serve", "--config", path, "--listen", "127.0.0.1:0", "--tls-listen", "",
                    "--api", "", timeout=10)
        self.assertEqual(r.returncode, 2)
        self.assertIn(path + ":1:12: key 'scenario', given " + path +
                      ":2:19: key 'scenario_params': ", r.stderr)
        self.assertIn("params.window must be a number", r.stderr)


if __name__ == "__main__":
    unittest.main()
