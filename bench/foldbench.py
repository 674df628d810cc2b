#!/usr/bin/env python3
"""foldbench: foldvm's dedup engine against Linux KSM on identical guests.

The standard run (default) compares convergence to the ideal, efficiency,
matched CPU, idle cost, reaction time, first writes and churn, each
scenario --repeat times.  --sweep measures the same guests at growing total
memory.  Method: bench/METHOD.md.  Results: bench/results/<stamp>/, and
docs/benchmarks.md plus the README's benchmark section are regenerated.
"""
import argparse
import datetime
import json
import os
import subprocess
import sys
import time

import fb_host as host
import fb_metrics as metrics
import fb_report as report
import fb_session as session
from fb_session import Scenario

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
KSM_DEFAULTS = {"pages_to_scan": 100, "sleep_millisecs": 20}
KSM_FAST = {"pages_to_scan": 5000, "sleep_millisecs": 20}
KSM_DEFAULT_RATE = 5000.0   # pages/s KSM defaults scan (100 per 20 ms)
LAYOUTS = ("scattered", "mix", "clones")
SWEEP_SIZES = "1G,2G,4G,8G,16G"


# ------------------------------------------------------------------ config --

def parse_args(argv):
    # run as bench/run: its usage says so
    ap = argparse.ArgumentParser(prog="bench/run",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--sweep", action="store_true", help="the scale sweep instead of the standard run")
    ap.add_argument("--sweep-sizes", default=None,
                    help="total guest memory per step (default %s; 16G only where the host has room)"
                    % SWEEP_SIZES)
    ap.add_argument("--repeat", type=int, default=None,
                    help="runs of every scenario (default 3; 1 with --quick or --sweep, "
                         "whose one repeat over 1-16 GiB takes 25-36 minutes)")
    ap.add_argument("--guests", type=int, default=4)
    ap.add_argument("--mem", default="128M", help="RAM per guest in the standard run (128M)")
    ap.add_argument("--idle", type=float, default=None,
                    help="idle window, s (default 60; 30 in the sweep)")
    ap.add_argument("--react-pages", type=int, default=1024,
                    help="pages the writer guest writes for the reaction time (1024)")
    ap.add_argument("--churn", type=int, default=4096, help="pages each guest rewrites (4096)")
    ap.add_argument("--layouts", default=",".join(LAYOUTS),
                    help="content layouts to compare (%s)" % ",".join(LAYOUTS))
    ap.add_argument("--files", action="append", default=None,
                    help="host files the guests hold as page cache (default /usr/lib, /usr/share)")
    ap.add_argument("--only", help="comma-separated scenario names (no docs update)")
    ap.add_argument("--quick", action="store_true",
                    help="2 x 64 MiB guests, short windows, 1 repeat: checks the harness, no docs update")
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    ap.add_argument("--no-docs", action="store_true", help="do not regenerate docs/benchmarks.md and README")
    ap.add_argument("--report-only", metavar="DIR", help="rebuild the report from a results directory")
    return ap.parse_args(argv)


class Config:
    """Sizes and windows of a run, derived from the options."""

    def __init__(self, opt, guests, mem):
        self.top = TOP
        self.files = opt.files or ["/usr/lib", "/usr/share"]
        self.guests, self.mem = guests, mem
        self.churn, self.probe_pages = opt.churn, opt.react_pages
        self.big_maxmap = 1 << 20
        self.quick = opt.quick
        pages = guests * metrics.parse_size(mem) // host.PAGE
        full_scan = pages / KSM_DEFAULT_RATE        # KSM defaults' full pass, s
        self.idle = opt.idle if opt.idle is not None else (30 if opt.sweep else 60)
        self.idle_settle = 2 if opt.quick else 5
        self.interval = 0.5
        self.plateau_s = 6 if opt.quick else 20
        self.settle = 2 if opt.quick else 5                    # after 99%
        self.window = 60 if opt.quick else 120                 # foldvm, KSM fast
        self.ksm_window = max(60, 4 * full_scan)               # KSM defaults
        self.reaction_window = max(20 if opt.quick else 30, 2.5 * full_scan)
        gib = pages * host.PAGE / host.GIB
        self.fill_timeout = 120 + 60 * gib
        self.tail_timeout = 300 + 60 * gib

    def describe(self):
        return "%d guests x %s" % (self.guests, self.mem)


# --------------------------------------------------------------- scenarios --

def foldvm_supports_layouts():
    """Non-scattered layouts need a `layout=` guest key (see METHOD.md)."""
    out = subprocess.run([os.path.join(TOP, "foldvm"), "--help"], capture_output=True, text=True)
    return "layout=" in out.stdout + out.stderr


def standard_scenarios(cfg, layouts):
    idle_ksm = [("smart_scan as shipped", {}), ("smart_scan off", {"smart_scan": 0})]
    main = [
        Scenario("ksm-default", "ksm", "KSM defaults (100 pages / 20 ms)", cfg.ksm_window,
                 ksm=KSM_DEFAULTS, idle=idle_ksm, reaction=True, tail=True, prober=True),
        # cpu and window are set from ksm-default of the same repeat
        Scenario("foldvm-cpu-matched", "foldvm", "foldvm at KSM defaults' CPU share",
                 cfg.ksm_window, raise_maxmap=True),
        Scenario("foldvm", "foldvm", "foldvm defaults, max_map_count raised", cfg.window,
                 raise_maxmap=True, idle=[("engine", {})], reaction=True, tail=True,
                 prober=True),
    ]
    for layout in layouts:
        suffix = "" if layout == "scattered" else "-" + layout
        main.append(Scenario("foldvm-maxmap-default" + suffix, "foldvm",
                             "foldvm, default max_map_count, %s" % layout, cfg.window,
                             layout=layout, probes=False))
        main.append(Scenario("ksm-fast" + suffix, "ksm", "KSM fast (5000 pages / 20 ms), %s" % layout,
                             cfg.window, ksm=KSM_FAST, layout=layout, probes=False))
    return main


def sweep_scenarios(cfg, size):
    idle_ksm = [("KSM defaults", KSM_DEFAULTS)]
    return [
        Scenario("sweep-foldvm-" + size, "foldvm", "foldvm, %s" % size, cfg.window * 2,
                 raise_maxmap=True, idle=[("engine", {})]),
        Scenario("sweep-ksm-" + size, "ksm", "KSM fast, idle at defaults, %s" % size,
                 cfg.window * 2, ksm=KSM_FAST, idle=idle_ksm),
    ]


def match_cpu(sc, ksm_run, cfg):
    """foldvm capped to KSM defaults' CPU share, for up to 3x its time."""
    m = ksm_run["metrics"]
    share = m["cpu_share_pct"] or 3.0
    sc.cpu = max(1, min(100, int(round(share))))
    sc.label = "foldvm capped to %d%% of a CPU (KSM defaults' share)" % sc.cpu
    ksm_time = m["t99_s"] if m["t99_s"] is not None else m["window_s"]
    return 3 * ksm_time


# -------------------------------------------------------------------- runs --

def run_one(sc, cfg, settings, work, out, rep, window=None, total=None):
    tag = "%s-r%d" % (sc.name, rep)
    print("foldbench: [%s] %s, repeat %d ..." % (time.strftime("%H:%M:%S"), sc.label, rep + 1),
          flush=True)
    r = session.run(sc, cfg, settings, work, tag, window)
    r["repeat"] = rep
    r["config"] = cfg.describe()
    r["total"] = total
    r["metrics"] = metrics.summarize(r)
    with open(os.path.join(out, tag + ".json"), "w") as f:
        json.dump(r, f, indent=1)
    m = r["metrics"]
    print("foldbench:   saved %.1f MiB (%.1f%% of ideal, %s), t90 %s s, CPU to t99 %.2f s"
          % (m["saved_mib"], m["pct_of_ideal"] or 0, r["end"], report.num(m["t90_s"]),
             m["cpu_s_to_t99"]), flush=True)
    return r


def standard(opt, settings, work, out):
    cfg = Config(opt, 2, "64M") if opt.quick else Config(opt, opt.guests, opt.mem)
    layouts = [x for x in opt.layouts.split(",") if x]
    notes = []
    if any(x != "scattered" for x in layouts) and not foldvm_supports_layouts():
        notes.append("Layouts %s were not run: this foldvm has no `layout=` guest key "
                     "(its payload places every page at its own random frame, i.e. "
                     "scattered; see METHOD.md)." % ", ".join(x for x in layouts if x != "scattered"))
        layouts = [x for x in layouts if x == "scattered"]
    reps = []
    for rep in range(opt.repeat):
        runs = {}
        for sc in selected(standard_scenarios(cfg, layouts), opt.only):
            window = None
            if sc.name == "foldvm-cpu-matched":
                if "ksm-default" not in runs:
                    notes.append("foldvm-cpu-matched needs ksm-default in the same run.")
                    continue
                window = match_cpu(sc, runs["ksm-default"], cfg)
            runs[sc.name] = run_one(sc, cfg, settings, work, out, rep, window)
        reps.append(runs)
    return {"kind": "standard", "config": cfg.describe(), "reps": reps, "notes": notes,
            "idle_s": cfg.idle, "react_pages": cfg.probe_pages}


def sweep_sizes(opt):
    """Sizes that fit this host; refuses sizes asked for that do not."""
    asked = opt.sweep_sizes or ("256M,512M" if opt.quick else SWEEP_SIZES)
    sizes, notes = [], []
    avail = host.mem_available()
    for size in asked.split(","):
        need = int(metrics.parse_size(size) * 1.2) + host.GIB
        if need <= avail:
            sizes.append(size)
            continue
        msg = "%s of guests needs about %.1f GiB available; this host has %.1f GiB" % (
            size, need / host.GIB, avail / host.GIB)
        if opt.sweep_sizes:
            sys.exit("foldbench: refusing the sweep: " + msg)
        notes.append("Skipped: " + msg + ".")
    return sizes, notes


def sweep(opt, settings, work, out):
    sizes, notes = opt.sizes
    reps = []
    for rep in range(opt.repeat):
        runs = {}
        for size in sizes:
            per_guest = "%dM" % (metrics.parse_size(size) // opt.guests // host.MIB)
            cfg = Config(opt, opt.guests, per_guest)
            for sc in selected(sweep_scenarios(cfg, size), opt.only):
                runs[sc.name] = run_one(sc, cfg, settings, work, out, rep, total=size)
        reps.append(runs)
    return {"kind": "sweep", "sizes": sizes, "reps": reps, "notes": notes,
            "idle_s": Config(opt, 1, "16M").idle,
            "config": "%d guests, sizes %s" % (opt.guests, ",".join(sizes))}


def selected(scenarios, only):
    if not only:
        return scenarios
    keep = only.split(",")
    return [s for s in scenarios if s.name in keep]


# -------------------------------------------------------------------- main --

def main(argv=None):
    opt = parse_args(argv if argv is not None else sys.argv[1:])
    if opt.report_only:
        report.rebuild(opt.report_only, TOP, update_docs=not opt.no_docs)
        return
    if os.geteuid() != 0:
        sys.exit("foldbench: run as root (it sets KSM and vm.max_map_count)")
    if opt.repeat is None:
        opt.repeat = 1 if opt.quick or opt.sweep else 3
    if opt.quick:
        opt.idle = opt.idle if opt.idle is not None else 5
        opt.churn, opt.react_pages = min(opt.churn, 512), min(opt.react_pages, 256)
    if opt.sweep:
        opt.sizes = sweep_sizes(opt)   # refuses before anything is changed
        for n in opt.sizes[1]:
            print("foldbench: " + n, flush=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = os.path.join(opt.out, stamp + ("-sweep" if opt.sweep else ""))
    work = os.path.join("/tmp", "foldbench-" + stamp)
    os.makedirs(out)
    os.makedirs(work)
    settings = host.HostSettings()
    started = time.monotonic()
    result = (sweep if opt.sweep else standard)(opt, settings, work, out)
    result.update(stamp=stamp, machine=host.machine(), files=Config(opt, 1, "16M").files,
                  wall_s=time.monotonic() - started, repeat=opt.repeat,
                  quick=opt.quick, only=opt.only)
    with open(os.path.join(out, "run.json"), "w") as f:
        json.dump({k: v for k, v in result.items() if k != "reps"}, f, indent=1)
    docs = not (opt.no_docs or opt.only or opt.quick)
    text = report.build(out, result, TOP, update_docs=docs)
    print(text)
    print("foldbench: results in %s (%.0f s)" % (out, result["wall_s"]))


if __name__ == "__main__":
    main()
