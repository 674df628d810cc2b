#!/usr/bin/env python3
"""foldbench: foldvm's dedup engine against Linux KSM on identical guests.

Every scenario starts a fresh `foldvm run --persist`, creates the same test
guests (same content, same seeds) over QMP, waits until they have filled
their memory, then turns merging on (foldvm's engine, or KSM) and samples the
kernel's accounting every half second:

  guest memory = the guests' private (anonymous) pages + the foldvm store
                 (foldvm), or the Pss of the guests' RAM (KSM, none)
  saving(t)    = guest memory when merging started - guest memory at t

After the convergence window each guest times first writes to merged pages,
churns (rewrites pages), and foldvm is stopped.  KSM and vm.max_map_count
settings are saved first and restored on every exit path.
"""
import argparse
import atexit
import datetime
import json
import os
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
KSM = "/sys/kernel/mm/ksm"
MAXMAP = "/proc/sys/vm/max_map_count"
PAGE = 4096
MIB = 1 << 20


# ---------------------------------------------------------------- settings --

class HostSettings:
    """KSM knobs and vm.max_map_count: saved once, restored at exit."""

    KEYS = ["run", "pages_to_scan", "sleep_millisecs", "use_zero_pages",
            "max_page_sharing", "advisor_mode", "smart_scan"]

    def __init__(self):
        self.saved = {}
        for k in self.KEYS:
            path = os.path.join(KSM, k)
            if os.path.exists(path):
                value = open(path).read().strip()
                # choices read back as "[current] other": keep the current
                if "[" in value:
                    value = value.split("[", 1)[1].split("]", 1)[0]
                self.saved[path] = value
        self.saved[MAXMAP] = open(MAXMAP).read().strip()
        atexit.register(self.restore)
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum, frame):
        raise SystemExit(128 + signum)

    @staticmethod
    def write(path, value):
        with open(path, "w") as f:
            f.write(str(value))

    def ksm(self, **kv):
        # run=0 first: some knobs refuse changes while KSM runs
        self.write(os.path.join(KSM, "run"), 0)
        for k, v in kv.items():
            path = os.path.join(KSM, k)
            if os.path.exists(path):
                self.write(path, v)

    def restore(self):
        run_path = os.path.join(KSM, "run")
        try:
            self.write(run_path, 0)
        except OSError:
            pass
        for path, value in self.saved.items():
            if path == run_path:
                continue
            try:
                self.write(path, value)
            except OSError as e:
                print("foldbench: could not restore %s: %s" % (path, e), file=sys.stderr)
        try:
            self.write(run_path, self.saved.get(run_path, "0"))
        except OSError:
            pass


def ksm_stat(name):
    try:
        return int(open(os.path.join(KSM, name)).read())
    except (OSError, ValueError):
        return 0


def ksmd_cpu_ns():
    """utime + stime of the ksmd kernel thread."""
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            if open("/proc/%s/comm" % pid).read().strip() != "ksmd":
                continue
            fields = open("/proc/%s/stat" % pid).read().rsplit(")", 1)[1].split()
            ticks = int(fields[11]) + int(fields[12])
            return ticks * 1_000_000_000 // os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            continue
    return 0


# -------------------------------------------------------------------- QMP --

class QMP:
    def __init__(self, path, timeout=60):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buf = b""
        greeting = self._read()
        if "QMP" not in greeting:
            raise RuntimeError("no QMP greeting on %s" % path)
        self.cmd("qmp_capabilities")

    def _read(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise RuntimeError("foldvm closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def cmd(self, name, args=None):
        req = {"execute": name}
        if args is not None:
            req["arguments"] = args
        self.sock.sendall(json.dumps(req).encode() + b"\r\n")
        while True:
            msg = self._read()
            if "event" in msg:
                continue
            if "error" in msg:
                raise RuntimeError("%s: %s" % (name, msg["error"]["desc"]))
            return msg["return"]

    def close(self):
        self.sock.close()


# -------------------------------------------------------------- scenarios --

def wait_for(pred, timeout, what):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return
        time.sleep(0.2)
    raise RuntimeError("timed out waiting for " + what)


class Scenario:
    def __init__(self, name, mode, window, label, ksm=None, cpu=0,
                 maxmap=0, domains=1):
        self.name, self.mode, self.window, self.label = name, mode, window, label
        self.ksm, self.cpu, self.maxmap, self.domains = ksm or {}, cpu, maxmap, domains


def guest_steps(window, churn):
    return "fill+measure+sleep:%d+measure-merged+churn:%d+sleep:1+wait" % (window, churn)


def guest_mem(host, mode):
    vms = host.cmd("query-vms")
    if mode == "foldvm":
        store = host.cmd("query-dedup-host").get("store-bytes", 0)
        return sum(v["dedup"]["anon-bytes"] for v in vms) + store
    return sum(v["dedup"]["pss-bytes"] for v in vms)


def guest_steps_now(rundir, names):
    steps = []
    for n in names:
        q = QMP(os.path.join(rundir, n + ".qmp"))
        steps.append(q.cmd("query-status")["foldvm-step"])
        q.close()
    return steps


def run_scenario(sc, opt, settings, work):
    rundir = os.path.join(work, "run-" + sc.name)
    cmd = [os.path.join(TOP, "foldvm"), "run", "--persist", "--quiet",
           "--run-dir", rundir, "--log-dir", os.path.join(work, "logs-" + sc.name)]
    for f in opt.files:
        cmd += ["--files", f]
    if sc.mode == "foldvm":
        cmd.append("--dedup")
        if sc.cpu:
            cmd += ["--dedup-cpu", str(sc.cpu)]
        if sc.maxmap:
            cmd += ["--max-map-count", str(sc.maxmap)]
    elif sc.mode == "ksm":
        cmd.append("--ksm")
        settings.ksm(**sc.ksm)
    else:
        settings.ksm()  # KSM off
    if not sc.maxmap:
        settings.write(MAXMAP, settings.saved[MAXMAP])
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: os.path.exists(os.path.join(rundir, "host.qmp")), 30,
                 "foldvm's host socket")
        return drive(sc, opt, proc, rundir)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        if sc.mode == "ksm":
            settings.ksm()


def drive(sc, opt, proc, rundir):
    host = QMP(os.path.join(rundir, "host.qmp"))
    names = ["g%d" % i for i in range(opt.guests)]
    for i, n in enumerate(names):
        host.cmd("vm-create", {
            "name": n, "mem": opt.mem, "vcpus": 1,
            "domain": "d%d" % (i % sc.domains),
            "zero": 20, "shared": 15, "blob": 35, "seed": 1234,
            "dedup": False, "steps": guest_steps(sc.window, opt.churn)})
    # merging starts when every guest filled its memory and sits in `sleep`
    wait_for(lambda: all(s == "sleep" for s in guest_steps_now(rundir, names)),
             300, "the guests to fill their memory")
    mem0 = guest_mem(host, sc.mode)
    ideal = host.cmd("query-dedup-ideal")
    t0 = time.time()
    cpu0 = ksmd_cpu_ns()
    if sc.mode == "foldvm":
        for n in names:
            q = QMP(os.path.join(rundir, n + ".qmp"))
            q.cmd("dedup-set", {"enabled": True})
            q.close()
    elif sc.mode == "ksm":
        HostSettings.write(os.path.join(KSM, "run"), 1)
    samples = []
    while True:
        steps = guest_steps_now(rundir, names)
        s = {"t": time.time() - t0, "phase": steps[0],
             "saved": mem0 - guest_mem(host, sc.mode)}
        if sc.mode == "foldvm":
            h = host.cmd("query-dedup-host")
            s.update(cpu_ns=h["scanner-cpu-ns"], passes=h["passes"],
                     pass_cpu_max_ns=h["pass-cpu-max-ns"],
                     pass_cpu_last_ns=h["pass-cpu-last-ns"],
                     merges=h["merges"], unmerges=h["unmerges"],
                     engine_saved=h["saved-bytes"],
                     budget_exhausted=h["vma-budget-exhausted"])
        elif sc.mode == "ksm":
            s.update(cpu_ns=ksmd_cpu_ns() - cpu0, passes=ksm_stat("full_scans"),
                     pages_sharing=ksm_stat("pages_sharing"),
                     pages_shared=ksm_stat("pages_shared"),
                     zero_pages=ksm_stat("ksm_zero_pages"),
                     general_profit=ksm_stat("general_profit"))
        samples.append(s)
        if all(x in ("wait", "done") for x in steps):
            break
        if s["t"] > sc.window + 600:
            raise RuntimeError("guests did not finish")
        time.sleep(0.5)
    measures = []
    for n in names:
        q = QMP(os.path.join(rundir, n + ".qmp"))
        measures.append(q.cmd("query-status")["foldvm-measure"])
        q.close()
    host.close()
    return {"scenario": sc.name, "label": sc.label, "mode": sc.mode,
            "window_s": sc.window, "cpu_cap_pct": sc.cpu, "max_map_count": sc.maxmap,
            "domains": sc.domains, "guests": opt.guests, "mem": opt.mem,
            "baseline_bytes": mem0, "ideal": ideal, "samples": samples,
            "measures": measures}


# ---------------------------------------------------------------- metrics --

def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2] if xs else 0


def summarize(r):
    # the convergence window: from the start until the first other phase
    conv = []
    for s in r["samples"]:
        if s["phase"] != "sleep":
            break
        conv.append(s)
    if not conv:
        conv = r["samples"][:1]
    tail = conv[-max(1, len(conv) // 5):]
    steady = sum(s["saved"] for s in tail) / len(tail)

    def t_at(frac):
        for s in conv:
            if steady > 0 and s["saved"] >= frac * steady:
                return s["t"]
        return None

    t100 = t_at(0.99)
    cpu_end = conv[-1].get("cpu_ns", 0)
    cpu_t100 = next((s.get("cpu_ns", 0) for s in conv if s["t"] >= (t100 or 0)), cpu_end)
    churn = r["samples"][len(conv):]
    m = {
        "steady_saved_mib": steady / MIB,
        "ideal_mib": r["ideal"]["ideal-bytes"] / MIB,
        "pct_of_ideal": 100.0 * steady / r["ideal"]["ideal-bytes"] if r["ideal"]["ideal-bytes"] else 0,
        "t50_s": t_at(0.5), "t90_s": t_at(0.9), "t100_s": t100,
        "cpu_s_window": cpu_end / 1e9,
        "cpu_share_pct": 100.0 * cpu_end / 1e9 / max(conv[-1]["t"], 1e-9),
        "merged_pages_per_cpu_s": (steady / PAGE) / (cpu_t100 / 1e9) if cpu_t100 else None,
        "merged_write_median_us": median([x["merged-write-median-ns"] for x in r["measures"]]) / 1000,
        "merged_write_p99_us": median([x["merged-write-p99-ns"] for x in r["measures"]]) / 1000,
        "fresh_write_median_us": median([x["first-write-median-ns"] for x in r["measures"]]) / 1000,
        "churn_pages_per_s": (sum(x["churn-pages"] for x in r["measures"]) /
                              (sum(x["churn-ns"] for x in r["measures"]) / 1e9)
                              if sum(x["churn-ns"] for x in r["measures"]) else None),
    }
    if r["mode"] == "foldvm":
        # a pass over memory that did not change vs the first full pass
        last = conv[-1]
        if last.get("pass_cpu_max_ns"):
            m["second_pass_cost_pct"] = 100.0 * last["pass_cpu_last_ns"] / last["pass_cpu_max_ns"]
        m["budget_exhausted"] = any(s.get("budget_exhausted") for s in conv)
        # churn bursts are shorter than a sample: divide the unmerges seen
        # across the churn by the guests' own (host-timed) churn time
        churn_s = sum(x["churn-ns"] for x in r["measures"]) / 1e9 / max(1, len(r["measures"]))
        if churn and churn_s > 0:
            m["unmerges_per_s"] = (churn[-1]["unmerges"] - conv[-1]["unmerges"]) / churn_s
    return m


# ----------------------------------------------------------------- report --

def fmt(v, spec="%.1f"):
    return "-" if v is None else spec % v


def write_report(results, out, opt, machine):
    by = {r["scenario"]: r for r in results}
    base = by.get("none")
    lines = ["| scenario | saved (MiB) | % of ideal | t50 (s) | t90 (s) | t100 (s) | "
             "CPU (s) | CPU share | merged pages / CPU-s | 1st write to merged (us, median/p99) | "
             "churn throughput vs none |", "|" + "---|" * 11]
    for r in results:
        m = r["metrics"]
        thr = "-"
        if base and m["churn_pages_per_s"] and base["metrics"]["churn_pages_per_s"]:
            thr = "%.0f%%" % (100.0 * m["churn_pages_per_s"] / base["metrics"]["churn_pages_per_s"])
        lines.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s / %s | %s |" % (
            r["label"], fmt(m["steady_saved_mib"]), fmt(m["pct_of_ideal"]),
            fmt(m["t50_s"]), fmt(m["t90_s"]), fmt(m["t100_s"]),
            fmt(m["cpu_s_window"], "%.2f"), fmt(m["cpu_share_pct"], "%.1f%%"),
            fmt(m["merged_pages_per_cpu_s"], "%.0f"),
            fmt(m["merged_write_median_us"], "%.1f"), fmt(m["merged_write_p99_us"], "%.1f"), thr))
    ratios = ratio_lines(by)
    md = ["# foldvm vs KSM: benchmark results", "",
          "Run %s on %s. %d guests x %s, content: 20%% zero, 15%% shared, 35%% host files "
          "(%s), 30%% unique; one trust domain unless the scenario says two."
          % (opt.stamp, machine, opt.guests, opt.mem, " ".join(opt.files)), "",
          "Saving is measured by the kernel (see bench/README.md); the ideal is the census of "
          "the guests' pages (written zero pages + non-zero pages - distinct contents, within "
          "the trust-domain rules).", ""] + lines + ["", "## Ratios against the targets", ""] + \
        ratios + ["", "![saving over time](plot.png)", ""]
    for r in results:
        m = r["metrics"]
        if "second_pass_cost_pct" in m:
            md.append("- %s: an unchanged pass costs %.1f%% of the first; unmerges during churn: %s/s; "
                      "VMA budget exhausted: %s" % (r["label"], m["second_pass_cost_pct"],
                                                    fmt(m.get("unmerges_per_s"), "%.0f"),
                                                    "yes" if m.get("budget_exhausted") else "no"))
    text = "\n".join(md) + "\n"
    open(os.path.join(out, "results.md"), "w").write(text)
    return text


def ratio_lines(by):
    def get(name, key):
        r = by.get(name)
        return r["metrics"].get(key) if r else None

    out = []
    fv, kd, kf, fc = "foldvm", "ksm-default", "ksm-fast", "foldvm-cpu-matched"
    s_f, s_k = get(fv, "steady_saved_mib"), get(kd, "steady_saved_mib")
    if s_f is not None and s_k:
        out.append("- saving, foldvm / KSM defaults: %.2fx (target >= 1)" % (s_f / s_k))
    for a, b, tgt, what in ((fv, kd, 10, "KSM defaults"),
                            (fc, kd, 3, "KSM defaults at the same CPU share"),
                            (fv, kf, 0, "KSM fast")):
        ta, tb = get(a, "t90_s"), get(b, "t90_s")
        if ta and tb:
            out.append("- time to 90%%: %s is %.1fx faster than %s%s" % (
                a, tb / ta, what, " (target >= %dx)" % tgt if tgt else ""))
    pa, pb = get(fv, "merged_pages_per_cpu_s"), get(kf, "merged_pages_per_cpu_s")
    pk = get(kd, "merged_pages_per_cpu_s")
    if pa and pk:
        out.append("- merged pages per CPU-second, foldvm / KSM defaults: %.2fx (target >= 3x)" % (pa / pk))
    if pa and pb:
        out.append("- merged pages per CPU-second, foldvm / KSM fast: %.2fx" % (pa / pb))
    sp = get(fv, "second_pass_cost_pct")
    if sp is not None:
        out.append("- an unchanged second pass costs %.1f%% of the first (target <= 5%%)" % sp)
    wa, wb = get(fv, "merged_write_median_us"), get(kd, "merged_write_median_us")
    if wa and wb:
        out.append("- first write to a merged page, foldvm / KSM: %.2fx (target <= 1.2x)" % (wa / wb))
    ca, cn = get(fv, "churn_pages_per_s"), get("none", "churn_pages_per_s")
    if ca and cn:
        out.append("- guest churn throughput with the engine, vs no dedup: %.0f%% (target >= 97%%)" % (100 * ca / cn))
    return out


def plot(results, out):
    dat = os.path.join(out, "plot.dat")
    with open(dat, "w") as f:
        for r in results:
            f.write('"%s"\n' % r["label"])
            for s in r["samples"]:
                f.write("%.2f %.2f\n" % (s["t"], s["saved"] / MIB))
            f.write("\n\n")
    script = ('set terminal pngcairo size 1100,650 noenhanced; set output "%s"; '
              'set title "memory saved over time (kernel-measured)"; '
              'set xlabel "seconds since merging started"; set ylabel "MiB saved"; '
              'set key below; set grid; '
              'plot for [i=0:%d] "%s" index i using 1:2 with lines lw 2 title columnheader(1)'
              % (os.path.join(out, "plot.png"), len(results) - 1, dat))
    subprocess.run(["gnuplot", "-e", script], check=True)


# ------------------------------------------------------------------- main --

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--guests", type=int, default=4)
    ap.add_argument("--mem", default="256M")
    ap.add_argument("--churn", type=int, default=4096, help="pages each guest rewrites")
    ap.add_argument("--files", action="append", default=None)
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    ap.add_argument("--quick", action="store_true", help="small and short (harness check)")
    ap.add_argument("--only", help="comma-separated scenario names")
    ap.add_argument("--no-docs", action="store_true", help="do not update docs/benchmarks.md")
    opt = ap.parse_args()
    opt.files = opt.files or ["/usr/lib", "/usr/share"]
    if os.geteuid() != 0:
        sys.exit("foldbench: run as root")
    if opt.quick:
        opt.guests, opt.mem, opt.churn = 2, "64M", 512
    scale = 0.25 if opt.quick else 1.0
    opt.stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = os.path.join(opt.out, opt.stamp)
    work = os.path.join("/tmp", "foldbench-" + opt.stamp)
    os.makedirs(out)
    os.makedirs(work)
    settings = HostSettings()
    big = 1 << 20
    w = lambda s: max(8, int(s * scale))
    scenarios = [
        Scenario("none", "none", w(10), "no dedup"),
        Scenario("ksm-default", "ksm", w(180), "KSM defaults (100 pages / 20 ms)",
                 ksm={"pages_to_scan": 100, "sleep_millisecs": 20}),
        Scenario("ksm-fast", "ksm", w(60), "KSM fast (5000 pages / 20 ms)",
                 ksm={"pages_to_scan": 5000, "sleep_millisecs": 20}),
        Scenario("foldvm", "foldvm", w(30), "foldvm defaults, max_map_count raised", maxmap=big),
        Scenario("foldvm-cpu-matched", "foldvm", w(60), "foldvm, CPU capped to KSM defaults' share",
                 maxmap=big),
        Scenario("foldvm-maxmap-default", "foldvm", w(30), "foldvm, default vm.max_map_count"),
        Scenario("foldvm-2domains", "foldvm", w(30), "foldvm, two trust domains", maxmap=big, domains=2),
    ]
    if opt.only:
        keep = opt.only.split(",")
        scenarios = [s for s in scenarios if s.name in keep]
    machine = "%s, %d CPUs, kernel %s" % (os.uname().nodename, os.cpu_count(), os.uname().release)
    results = []
    for sc in scenarios:
        if sc.name == "foldvm-cpu-matched":
            kd = next((r for r in results if r["scenario"] == "ksm-default"), None)
            share = kd["metrics"]["cpu_share_pct"] if kd else 10.0
            sc.cpu = max(1, min(100, int(round(share))))
            sc.label = "foldvm, CPU capped to %d%% (KSM defaults' share)" % sc.cpu
        print("foldbench: %s ..." % sc.label, flush=True)
        r = run_scenario(sc, opt, settings, work)
        r["metrics"] = summarize(r)
        json.dump(r, open(os.path.join(out, sc.name + ".json"), "w"), indent=1)
        m = r["metrics"]
        print("foldbench:   saved %.1f MiB (%.1f%% of ideal), t90 %s s, CPU %.2f s"
              % (m["steady_saved_mib"], m["pct_of_ideal"], fmt(m["t90_s"]), m["cpu_s_window"]),
              flush=True)
        results.append(r)
    report = write_report(results, out, opt, machine)
    plot(results, out)
    if not opt.no_docs and not opt.only and not opt.quick:
        update_docs(report, out)
    print(report)
    print("foldbench: results in %s" % out)


def update_docs(report, out):
    docs = os.path.join(TOP, "docs")
    head = open(os.path.join(HERE, "METHOD.md")).read()
    body = report.replace("](plot.png)", "](benchmark-plot.png)")
    open(os.path.join(docs, "benchmarks.md"), "w").write(head + "\n" + body)
    subprocess.run(["cp", os.path.join(out, "plot.png"), os.path.join(docs, "benchmark-plot.png")],
                   check=True)


if __name__ == "__main__":
    main()
