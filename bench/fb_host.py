"""Host side of foldbench: KSM and sysctl settings, and what /proc says.

Everything here reads the kernel's own accounting, never foldvm's:
per-thread CPU (schedstat), VMAs (/proc/PID/maps), slab memory
(/proc/slabinfo), anonymous memory (/proc/PID/smaps_rollup).
"""
import atexit
import os
import signal
import sys

KSM = "/sys/kernel/mm/ksm"
MAXMAP = "/proc/sys/vm/max_map_count"
PAGE = 4096
MIB = 1 << 20
GIB = 1 << 30
VMA_SLABS = ("vm_area_struct", "maple_node")


def read_text(path):
    with open(path) as f:
        return f.read().strip()


def write_text(path, value):
    with open(path, "w") as f:
        f.write(str(value))


def ksm_path(knob):
    return os.path.join(KSM, knob)


# ---------------------------------------------------------------- settings --

class HostSettings:
    """KSM knobs and vm.max_map_count: saved once, restored at every exit.

    SIGINT, SIGTERM and SIGHUP become SystemExit, so `finally` blocks stop
    foldvm first and the atexit handler then restores what was saved."""

    KNOBS = ["run", "pages_to_scan", "sleep_millisecs", "use_zero_pages",
             "max_page_sharing", "advisor_mode", "smart_scan"]

    def __init__(self):
        self.saved = {}
        for knob in self.KNOBS:
            path = ksm_path(knob)
            if os.path.exists(path):
                self.saved[path] = self._current(read_text(path))
        self.saved[MAXMAP] = read_text(MAXMAP)
        atexit.register(self.restore)
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, self._on_signal)

    @staticmethod
    def _current(value):
        # choices read back as "[current] other": keep the current one
        if "[" in value:
            return value.split("[", 1)[1].split("]", 1)[0]
        return value

    @staticmethod
    def _on_signal(signum, frame):
        signal.signal(signum, signal.SIG_IGN)  # one restore, not two
        raise SystemExit(128 + signum)

    def shipped(self, knob):
        """The value a KSM knob had before foldbench touched it."""
        return self.saved.get(ksm_path(knob))

    def ksm(self, **knobs):
        """Stop KSM (some knobs refuse changes while it runs), put every
        knob back to what the host had, then apply knobs."""
        write_text(ksm_path("run"), 0)
        for path, value in self.saved.items():
            if path.startswith(KSM) and not path.endswith("/run"):
                write_text(path, value)
        for knob, value in knobs.items():
            if os.path.exists(ksm_path(knob)):
                write_text(ksm_path(knob), value)

    def max_map_count(self, value=None):
        write_text(MAXMAP, self.saved[MAXMAP] if value is None else value)

    def restore(self):
        run_path = ksm_path("run")
        self._try_write(run_path, 0)
        for path, value in self.saved.items():
            if path != run_path:
                self._try_write(path, value)
        if run_path in self.saved:
            self._try_write(run_path, self.saved[run_path])

    @staticmethod
    def _try_write(path, value):
        try:
            write_text(path, value)
        except OSError as e:
            print("foldbench: could not restore %s: %s" % (path, e), file=sys.stderr)


def ksm_stat(name):
    try:
        return int(read_text(ksm_path(name)))
    except (OSError, ValueError):
        return 0


# --------------------------------------------------------------- processes --

def _stat_fields(path):
    """Fields of a /proc stat file after the command name."""
    return read_text(path).rsplit(")", 1)[1].split()


def process_tree(root):
    """root and every descendant process (foldvm may run worker processes)."""
    children = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            ppid = int(_stat_fields("/proc/%s/stat" % pid)[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(pid))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def task_cpu_ns(task_dir):
    """CPU time of one thread: schedstat's run time (ns), else stat ticks."""
    try:
        return int(read_text(task_dir + "/schedstat").split()[0])
    except (OSError, IndexError, ValueError):
        pass
    try:
        f = _stat_fields(task_dir + "/stat")
        return (int(f[11]) + int(f[12])) * 1_000_000_000 // os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0


def threads(pid):
    """(comm, task directory) of every thread of a process."""
    base = "/proc/%d/task" % pid
    try:
        tids = os.listdir(base)
    except OSError:
        return []
    out = []
    for tid in tids:
        try:
            out.append((read_text("%s/%s/comm" % (base, tid)), "%s/%s" % (base, tid)))
        except OSError:
            continue
    return out


def tree_cpu_ns(root, prefix=""):
    """CPU of the threads of root's process tree whose name starts with
    prefix ("" = all of them)."""
    return sum(task_cpu_ns(d) for pid in process_tree(root)
               for comm, d in threads(pid) if comm.startswith(prefix))


def find_pid(comm):
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                if read_text("/proc/%s/comm" % pid) == comm:
                    return int(pid)
            except OSError:
                continue
    return None


def ksmd_cpu_ns():
    pid = find_pid("ksmd")
    return task_cpu_ns("/proc/%d" % pid) if pid else 0


def tree_vmas(root):
    """VMAs of root's process tree: lines of /proc/PID/maps."""
    total = 0
    for pid in process_tree(root):
        try:
            with open("/proc/%d/maps" % pid, "rb") as f:
                total += sum(1 for _ in f)
        except OSError:
            continue
    return total


def tree_kib_field(root, name, field):
    """Sum over root's process tree of a "Field: N kB" line of
    /proc/PID/<name>, in bytes (processes that went away count 0)."""
    total = 0
    for pid in process_tree(root):
        try:
            for line in read_text("/proc/%d/%s" % (pid, name)).splitlines():
                if line.startswith(field + ":"):
                    total += int(line.split()[1]) * 1024
        except (OSError, ValueError):
            continue
    return total


def tree_anon_bytes(root):
    """Anonymous memory of root's process tree (smaps_rollup)."""
    return tree_kib_field(root, "smaps_rollup", "Anonymous")


def tree_rss_anon_bytes(root):
    """RssAnon of root's process tree: the kernel's counter of anonymous
    resident pages (/proc/PID/status), read in O(1) whatever the VMAs."""
    return tree_kib_field(root, "status", "RssAnon")


def slab_bytes(names=VMA_SLABS):
    """Memory of the named slab caches (whole slabs), host-wide."""
    total = 0
    with open("/proc/slabinfo") as f:
        for line in f:
            fields = line.split()
            if fields and fields[0] in names:
                # name active objs objsize objperslab pagesperslab : tunables
                # ... : slabdata active_slabs num_slabs sharedavail
                pages_per_slab = int(fields[5])
                num_slabs = int(fields[fields.index("slabdata") + 2])
                total += num_slabs * pages_per_slab * PAGE
    return total


def mem_available():
    for line in read_text("/proc/meminfo").splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return 0


def machine():
    model = "unknown CPU"
    for line in read_text("/proc/cpuinfo").splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    total = 0
    for line in read_text("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            total = int(line.split()[1]) * 1024
    return "%s, %d CPUs (%s), %.0f GiB RAM, kernel %s" % (
        os.uname().nodename, os.cpu_count(), model, total / GIB, os.uname().release)
