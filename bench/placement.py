"""Where the kernel runs the server, next to its client or on the other CPU, and what that costs.

On a virtual machine, waking a process on an idle virtual CPU is far dearer than waking one on
the CPU that is already running. A lock-step SMTP conversation wakes the other side on every
reply, so the same server can measure several times faster or slower depending only on
placement, and the scheduler's choice sticks for minutes. This runs smtp-sink and smtpfault
(one I/O thread; with no scenario and with bench/every-command.lua) pinned with taskset to
the CPU smtp-source is pinned to, and to another one, so that bench/run.sh's swings can be
told from the servers' own costs.
"""

import os
import statistics
import sys

from compare import ROOT, publish, run_source, smtp_sink, smtpfault, start_servers, workload

WORKLOADS = [
    workload("1 session, connection per message", ["-s", "1"], 2000, 1024),
    workload("50 sessions, reused connections", ["-d", "-s", "50"], 20000, 1024),
]


def main():
    binary, rounds = sys.argv[1], int(sys.argv[2])
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        raise SystemExit("placement needs two CPUs; this process may use %d" % len(cpus))
    source_cpu, other_cpu = cpus[0], cpus[1]
    every = os.path.join(ROOT, "bench", "every-command.lua")
    pin = lambda cpu: ["taskset", "-c", str(cpu)]
    rows = []
    for wname, args, count in WORKLOADS:
        for where, server_cpu in (("same CPU", source_cpu), ("other CPU", other_cpu)):
            one_thread = {"SMTPFAULT_THREADS": "1"}
            servers = start_servers([
                ("smtp-sink", smtp_sink, pin(server_cpu)),
                ("smtpfault", smtpfault(binary), pin(server_cpu), one_thread),
                ("smtpfault + Lua", smtpfault(binary, every), pin(server_cpu), one_thread)])
            got = {s.name: [] for s in servers}
            try:
                for _ in range(rounds):
                    for srv in servers:
                        elapsed, cpu, _ = run_source(srv, args, pin(source_cpu))
                        got[srv.name].append((count / elapsed, cpu * 1e6 / count))
            finally:
                for srv in servers:
                    srv.stop()
            for name, samples in got.items():
                rows.append((wname, where, name, statistics.median(r[0] for r in samples),
                             statistics.median(r[1] for r in samples)))
    lines = ["| workload | server placed on | server | msg/s | server CPU us/msg |",
             "|---|---|---|---:|---:|"]
    lines += ["| %s | %s | %s | %.0f | %.0f |" % r for r in rows]
    publish("bench/run.sh placement",
            "%d rounds, medians; smtp-source pinned to CPU %d, each server (smtpfault with one I/O "
            "thread; \"+ Lua\" adds `--scenario bench/every-command.lua`) pinned to the same CPU "
            "or to CPU %d." % (rounds, source_cpu, other_cpu), lines)


if __name__ == "__main__":
    main()
