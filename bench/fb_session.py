"""One run of one scenario: a fresh foldvm, the same guests, and the phases.

Phases (the guests are paused between them with QMP `stop`, so the bench,
not a fixed sleep, decides when the next one starts):

  fill      every guest fills its memory and (all but the writer) writes
            its probe pages once (`measure`); each guest is paused in the
            `sleep` step that follows.
  converge  census (the ideal), then merging starts (foldvm's engine or
            KSM); sampled until 99% of the ideal, a plateau, or the window.
            In scenarios with a prober, one guest is not paused: from the
            fill on it waits for its probe pages to be merged and times
            its first writes to them at once (`measure-merging`), while
            merging goes on elsewhere; then it is paused.
  idle      nothing is written for a fixed window: CPU of the mechanism.
  reaction  the writer guest writes its probe pages, whose content the
            other guests of its domain already hold: time until merged.
  tail      the other guests time first writes to merged pages
            (`measure-merged`), then every guest churns (rewrites pages).
"""
import os
import signal
import subprocess
import time

import fb_host as host
from fb_qmp import Sockets, WaitTimeout, wait_for

GATE_S = 5          # the sleep each guest is paused in after filling
CONVERGED = 0.99    # share of the ideal that ends the convergence phase


class Scenario:
    """What one run does.  mode: "foldvm" or "ksm"."""

    def __init__(self, name, mode, label, window, ksm=None, idle_ksm=None,
                 cpu=0, raise_maxmap=False, domains=1, layout="scattered",
                 idle=(), reaction=False, tail=False, prober=False, probes=True):
        self.name, self.mode, self.label, self.window = name, mode, label, window
        self.ksm = ksm or {}                # KSM knobs while converging
        self.idle_ksm = idle_ksm            # KSM knobs for the idle windows
        self.cpu = cpu                      # foldvm --dedup-cpu (0 = none)
        self.raise_maxmap = raise_maxmap
        self.domains, self.layout = domains, layout
        self.idle = list(idle)              # [(label, {ksm knobs})]
        self.reaction, self.tail = reaction, tail
        self.prober = prober                # first writes during merging
        # probe pages written (`measure`): the timing scenarios need them;
        # a layout scenario does not, and 1024 identical pages at other
        # addresses in every guest would blur the layout it measures
        self.probes = probes


def guest_names(n):
    return ["g%d" % i for i in range(n)]


def guest_steps(role, churn):
    """The same content in every scenario with probes, so every census of
    those is the same (a "plain" guest only fills: the layout scenarios).
    The writer leaves its probe pages untouched until the reaction; the
    prober times its first writes during merging (measure-merging rewrites
    each word with its own value, so the census still holds) instead of
    after it.  Each guest's first command after a pause is a guest-timed
    one, so no pause ever lands inside the host-timed churn."""
    if role == "plain":
        return "fill+sleep:%d+wait" % GATE_S
    if role == "writer":
        return "fill+sleep:%d+measure+sleep:%d+measure-merged+churn:%d+wait" % (
            GATE_S, GATE_S, churn)
    if role == "prober":
        return "fill+measure+measure-merging+sleep:%d+churn:%d+wait" % (GATE_S, churn)
    return "fill+measure+sleep:%d+measure-merged+churn:%d+wait" % (GATE_S, churn)


class Session:
    def __init__(self, sc, cfg, settings, work, tag):
        self.sc, self.cfg, self.settings = sc, cfg, settings
        self.rundir = os.path.join(work, "run-" + tag)
        self.logdir = os.path.join(work, "logs-" + tag)
        self.names = guest_names(cfg.guests)
        self.writer = self.names[-1]
        # the prober: a guest other than the writer (there are >= 2)
        self.prober = self.names[0] if sc.prober else None
        self.proc = None
        self.qmp = None
        self.merging_start = None   # time.monotonic() when merging started

    # ---------------------------------------------------------- lifecycle --

    def command(self):
        cmd = [os.path.join(self.cfg.top, "foldvm"), "run", "--persist", "--quiet",
               "--run-dir", self.rundir, "--log-dir", self.logdir]
        for f in self.cfg.files:
            cmd += ["--files", f]
        if self.sc.mode == "ksm":
            cmd.append("--ksm")
        elif self.sc.cpu:
            cmd += ["--dedup-cpu", str(self.sc.cpu)]
        return cmd

    def start(self):
        if self.sc.mode == "ksm":
            self.settings.ksm(**self.sc.ksm)
        else:
            self.settings.ksm()  # KSM stopped
        self.settings.max_map_count(self.cfg.big_maxmap if self.sc.raise_maxmap else None)
        with open(self.logdir + ".out", "w") as out:  # foldvm's own messages
            self.proc = subprocess.Popen(self.command(), stdout=out, stderr=subprocess.STDOUT)
        try:
            self.qmp = Sockets(self.rundir)
        except RuntimeError as e:
            raise RuntimeError("%s (foldvm's output: %s.out)" % (e, self.logdir)) from e

    def stop(self):
        if self.qmp:
            self.qmp.close()
        if self.proc and self.proc.poll() is None:
            # the first signal ends `wait`; the second stops paused guests
            self.proc.send_signal(signal.SIGTERM)
            time.sleep(1)
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.settings.ksm()
        self.settings.max_map_count()

    # ------------------------------------------------------------- guests --

    def role(self, name):
        if not self.sc.probes:
            return "plain"
        return {self.writer: "writer", self.prober: "prober"}.get(name, "other")

    def create_guests(self):
        for i, name in enumerate(self.names):
            spec = {"name": name, "mem": self.cfg.mem, "vcpus": 1,
                    "domain": "d%d" % (i % self.sc.domains),
                    "zero": 20, "shared": 15, "blob": 35, "seed": 1234,
                    "probe-pages": self.cfg.probe_pages, "dedup": False,
                    "steps": guest_steps(self.role(name), self.cfg.churn)}
            if self.sc.layout != "scattered":
                spec["layout"] = self.sc.layout
            self.qmp.host.cmd("vm-create", spec)

    def status(self, name):
        return self.qmp.guest(name).cmd("query-status")

    def pause_in_sleep(self, name, ready=lambda st: True, timeout=600):
        """Wait until the guest sleeps (and ready(status) holds), pause it."""
        def sleeping():
            st = self.status(name)
            if st["status"] in ("shutdown", "internal-error"):
                raise RuntimeError("guest %s stopped: %s" % (name, st["status"]))
            return st["foldvm-step"] == "sleep" and ready(st)
        wait_for(sleeping, timeout, "guest %s to sleep" % name, interval=0.05)
        self.qmp.guest(name).cmd("stop")
        if self.status(name)["foldvm-step"] != "sleep":
            raise RuntimeError("guest %s left its sleep before it was paused" % name)

    def resume(self, names):
        for name in names:
            self.qmp.guest(name).cmd("cont")

    def measures(self):
        return {n: self.status(n)["foldvm-measure"] for n in self.names}

    # ------------------------------------------------------------ memory --

    def guest_memory(self):
        """(kernel-measured memory of the guests, their anonymous part)."""
        vms = self.qmp.host.cmd("query-vms")
        anon = sum(v["dedup"]["anon-bytes"] for v in vms)
        if self.sc.mode == "foldvm":
            store = self.qmp.host.cmd("query-dedup-host").get("store-bytes", 0)
            return anon + store, anon
        return sum(v["dedup"]["pss-bytes"] for v in vms), anon

    def quick_memory(self):
        """The same, cheap enough to sample every 50 ms (the reaction):
        query-vms reads /proc/self/smaps, which takes foldvm about a second
        with tens of thousands of VMAs.  foldvm: the process's RssAnon (a
        kernel counter) plus the store's blocks, so its own heap counts too
        (it barely moves within a reaction); KSM: as guest_memory, whose
        guests' RAM is four VMAs."""
        if self.sc.mode == "foldvm":
            store = self.qmp.host.cmd("query-dedup-host").get("store-bytes", 0)
            return host.tree_rss_anon_bytes(self.proc.pid) + store
        return self.guest_memory()[0]

    def mechanism_cpu_ns(self):
        """CPU of the dedup mechanism: every engine thread, or ksmd."""
        if self.sc.mode == "foldvm":
            return host.tree_cpu_ns(self.proc.pid, "dedup-")
        return host.ksmd_cpu_ns()

    def footprint(self):
        """What merging costs the kernel and the process (see METHOD.md)."""
        mem, anon = self.guest_memory()
        out = {"guest_bytes": mem, "guest_anon": anon,
               "process_anon": host.tree_anon_bytes(self.proc.pid),
               "vmas": host.tree_vmas(self.proc.pid),
               "vma_slab_bytes": host.slab_bytes()}
        if self.sc.mode == "foldvm":
            h = self.qmp.host.cmd("query-dedup-host")
            out.update(engine_vmas=h.get("vmas-used", 0), passes=h.get("passes", 0),
                       budget_exhausted=h.get("vma-budget-exhausted", False))
        else:
            out.update(general_profit=host.ksm_stat("general_profit"),
                       pages_sharing=host.ksm_stat("pages_sharing"),
                       full_scans=host.ksm_stat("full_scans"))
        return out

    # ------------------------------------------------------------- phases --

    def fill(self):
        self.create_guests()
        for name in self.names:
            if name == self.prober:
                # not paused: it waits for merges that have not begun
                wait_for(lambda: self.step(name) == "measure-merging",
                         self.cfg.fill_timeout, "guest %s to fill" % name, interval=0.05)
            else:
                self.pause_in_sleep(name, timeout=self.cfg.fill_timeout)

    def step(self, name):
        st = self.status(name)
        if st["status"] in ("shutdown", "internal-error"):
            raise RuntimeError("guest %s stopped: %s" % (name, st["status"]))
        return st["foldvm-step"]

    def start_merging(self):
        if self.sc.mode == "foldvm":
            for name in self.names:
                self.qmp.guest(name).cmd("dedup-set", {"enabled": True})
        else:
            host.write_text(host.ksm_path("run"), 1)

    def sample(self, t0, cpu0, mem0, memory=None):
        mem = memory() if memory else self.guest_memory()[0]
        s = {"t": time.monotonic() - t0, "saved": mem0 - mem,
             "cpu_ns": self.mechanism_cpu_ns() - cpu0}
        if self.sc.mode == "ksm":
            s["pages_sharing"] = host.ksm_stat("pages_sharing")
        return s

    def converge(self, ideal, mem0, window):
        """Merge until CONVERGED of the ideal (the goal), a plateau, or the
        window.
        Returns the samples, why it ended, and whether the prober (if
        any) finished meanwhile (it was paused then)."""
        cpu0 = self.mechanism_cpu_ns()
        t0 = self.merging_start = time.monotonic()
        self.start_merging()
        samples, end, settle_until = [], None, None
        probed = False  # the prober was paused after its timed writes
        while True:
            samples.append(self.sample(t0, cpu0, mem0))
            if self.prober and not probed:
                probed = self.pause_prober_if_done()
            end = end or converge_end(samples, ideal, window, self.cfg.plateau_s)
            if end and settle_until is None:
                # keep sampling a little: the saving a run ends with
                settle_until = samples[-1]["t"] + (self.cfg.settle if end == "converged" else 0)
            if end and samples[-1]["t"] >= settle_until:
                return samples, end, probed
            time.sleep(self.cfg.interval)

    def pause_prober_if_done(self):
        """Pause the prober in the sleep after its timed writes (GATE_S
        long; the bench polls every `interval`, so it is caught there)."""
        st = self.status(self.prober)
        if st["status"] in ("shutdown", "internal-error"):
            raise RuntimeError("guest %s stopped: %s" % (self.prober, st["status"]))
        if st["foldvm-step"] == "sleep" and probed_merging(st):
            self.qmp.guest(self.prober).cmd("stop")
            return True
        return False

    def finish_probe(self):
        """After convergence: a prober still waiting for its pages to be
        merged gets until the reaction window; then it is left waiting
        (measure-merging gives up by itself after 10 minutes) and the
        figure is reported as not measured."""
        try:
            self.pause_in_sleep(self.prober, ready=probed_merging,
                                timeout=self.cfg.reaction_window)
            return True
        except WaitTimeout:
            return False

    def set_idle_ksm(self, knobs):
        for knob, value in knobs.items():
            path = host.ksm_path(knob)
            if os.path.exists(path):
                host.write_text(path, value)

    def idle(self):
        """CPU of the mechanism (and of the whole process) while nothing is
        written; foldvm is not polled during the window."""
        out = []
        for label, knobs in self.sc.idle:
            self.set_idle_ksm(knobs)
            time.sleep(self.cfg.idle_settle)
            f0 = self.footprint()
            m0, p0, w0 = self.mechanism_cpu_ns(), host.tree_cpu_ns(self.proc.pid), time.monotonic()
            time.sleep(self.cfg.idle)
            m1, p1, w1 = self.mechanism_cpu_ns(), host.tree_cpu_ns(self.proc.pid), time.monotonic()
            f1 = self.footprint()
            out.append({"label": label, "seconds": w1 - w0, "cpu_ns": m1 - m0,
                        "process_cpu_ns": p1 - p0,
                        "passes": f1.get("passes", f1.get("full_scans", 0)) -
                        f0.get("passes", f0.get("full_scans", 0)),
                        "saved_drift": f0["guest_bytes"] - f1["guest_bytes"]})
        return out

    def reaction(self):
        """The writer writes N pages that other guests hold: time and CPU
        from its resumption until the kernel-measured memory of the guests
        is back to what it was before the N new pages (99% of them)."""
        n = self.cfg.probe_pages
        wait_for(lambda: self.status(self.writer)["foldvm-step"] == "measure",
                 GATE_S + 5, "the writer's measure step")
        mem0 = self.quick_memory()
        cpu0 = self.mechanism_cpu_ns()
        t0 = time.monotonic()
        self.resume([self.writer])
        want = CONVERGED * n * host.PAGE
        samples, paused = [], False
        while True:
            # saved = memory with the N pages written, unmerged - now
            s = self.sample(t0, cpu0, mem0 + n * host.PAGE, self.quick_memory)
            samples.append(s)
            paused = paused or self.pause_writer_if_done()
            if s["saved"] >= want or s["t"] >= self.cfg.reaction_window:
                break
            time.sleep(0.05)
        if not paused:
            self.pause_in_sleep(self.writer, ready=wrote_probes)
        last = samples[-1]
        return {"pages": n, "merged": last["saved"] >= want,
                "seconds": last["t"], "cpu_ns": last["cpu_ns"],
                "merged_share": last["saved"] / (n * host.PAGE), "samples": samples}

    def pause_writer_if_done(self):
        """Pause the writer in the sleep after its writes (before that sleep
        ends and it goes on to the tail steps)."""
        st = self.status(self.writer)
        if st["foldvm-step"] == "sleep" and wrote_probes(st):
            self.qmp.guest(self.writer).cmd("stop")
            return True
        return False

    def tail(self):
        self.resume(self.names)
        wait_for(lambda: all(self.status(n)["foldvm-step"] in ("wait", "done")
                             for n in self.names),
                 self.cfg.tail_timeout, "the guests to churn", interval=0.5)


def wrote_probes(status):
    return status["foldvm-measure"]["tsc-khz"] > 0


def probed_merging(status):
    return status["foldvm-measure"]["merging-write-median-ns"] > 0


def converge_end(samples, ideal, window, plateau_s):
    """Why the convergence phase ends now, or None to go on."""
    last = samples[-1]
    if ideal > 0 and last["saved"] >= CONVERGED * ideal:
        return "converged"
    if last["t"] >= window:
        return "window"
    if ideal > 0 and last["t"] >= plateau_s and last["saved"] >= 0.10 * ideal:
        before = [s for s in samples if s["t"] <= last["t"] - plateau_s]
        if before and last["saved"] - before[-1]["saved"] < 0.005 * ideal:
            return "plateau"
    return None


def run(sc, cfg, settings, work, tag, window=None):
    """Run one scenario once; returns the raw record (fb_metrics reads it)."""
    s = Session(sc, cfg, settings, work, tag)
    try:
        s.start()
        s.fill()
        ideal = s.qmp.host.cmd("query-dedup-ideal")
        base = s.footprint()
        # The prober rewrites its probe pages once they are merged (same
        # content): neither mechanism is timed on merging again pages the
        # bench itself wrote, so convergence is against the ideal less them.
        goal = ideal["ideal-bytes"] - (cfg.probe_pages * host.PAGE if s.prober else 0)
        samples, end, probed = s.converge(goal, base["guest_bytes"], window or sc.window)
        steady = s.footprint()
        probe = None
        if s.prober:
            done = probed or s.finish_probe()
            probe = {"guest": s.prober, "done": done,
                     "merging_start_mono": s.merging_start}
        idle = s.idle()
        reaction = s.reaction() if sc.reaction else None
        if sc.tail:
            s.tail()
        measures = s.measures()
    finally:
        s.stop()
    return {"scenario": sc.name, "label": sc.label, "mode": sc.mode,
            "layout": sc.layout, "cpu_cap_pct": sc.cpu, "domains": sc.domains,
            "max_map_count": cfg.big_maxmap if sc.raise_maxmap else settings.saved[host.MAXMAP],
            "guests": cfg.guests, "mem": cfg.mem, "window_s": window or sc.window,
            "end": end, "ideal": ideal, "goal_bytes": goal, "base": base, "steady": steady,
            "samples": samples, "idle": idle, "reaction": reaction,
            "measures": measures, "writer": s.writer, "probe": probe}
