"""Figures of one run, medians over repeats, ratios and targets.

Pure functions of the JSON records fb_session.run() writes, so a report
can be rebuilt from bench/results/ without running anything.
"""
from fb_host import GIB, MIB

LEVELS = (50, 90, 99)


def parse_size(text):
    units = {"K": 1 << 10, "M": MIB, "G": GIB, "T": 1 << 40}
    text = str(text).strip().upper().rstrip("IB").rstrip("B")
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text) * MIB  # a bare number is MiB, as in foldvm


def first_reaching(samples, amount):
    return next((s for s in samples if s["saved"] >= amount), None)


def convergence(r):
    """t50/t90/t99 against the goal - the ideal, less the probe pages a
    prober rewrote meanwhile (see goal_bytes in fb_session.run) - and what
    was reached at t99 (or at the end of the window when 99% was not
    reached).  The share reached is against the whole ideal."""
    ideal = r["ideal"]["ideal-bytes"]
    goal = r.get("goal_bytes", ideal)
    samples = r["samples"]
    times = {}
    for level in LEVELS:
        s = first_reaching(samples, level / 100.0 * goal) if goal > 0 else None
        times["t%d_s" % level] = s["t"] if s else None
    at = first_reaching(samples, 0.99 * goal) if goal > 0 else None
    at = at or samples[-1]
    cpu_s = at["cpu_ns"] / 1e9
    last = samples[-1]
    return dict(times, **{
        "ideal_mib": ideal / MIB,
        "saved_mib": last["saved"] / MIB,
        # what counts against another mechanism: a run that stopped before
        # merging again the pages the prober rewrote is not behind by them
        "saved_goal_mib": min(last["saved"], goal) / MIB,
        "pct_of_ideal": 100.0 * last["saved"] / ideal if ideal > 0 else None,
        "window_s": last["t"],
        "end": r["end"],
        "cpu_s_to_t99": cpu_s,
        "cpu_share_pct": 100.0 * cpu_s / at["t"] if at["t"] > 0 else None,
        "efficiency_mib_per_cpu_s": (at["saved"] / MIB) / cpu_s if cpu_s > 0 else None,
    })


def idle(r):
    gib = r["guests"] * parse_size(r["mem"]) / GIB
    out = {}
    for w in r["idle"]:
        share = 100.0 * w["cpu_ns"] / 1e9 / w["seconds"]
        out["idle " + w["label"]] = {
            "cpu_share_pct": share, "cpu_share_pct_per_gib": share / gib,
            "process_cpu_share_pct": 100.0 * w["process_cpu_ns"] / 1e9 / w["seconds"],
            "passes_per_s": w["passes"] / w["seconds"]}
    return out


def reaction(r):
    x = r["reaction"]
    if not x:
        return {}
    return {"reaction_s": x["seconds"] if x["merged"] else None,
            "reaction_cpu_s": x["cpu_ns"] / 1e9,
            "reaction_merged_pct": 100.0 * x["merged_share"],
            "reaction_window_s": x["seconds"]}


def footprint(r, saved):
    """VMAs, their slab memory, the engine's own memory and the net saving."""
    b, s = r["base"], r["steady"]
    vmas = s["vmas"] - b["vmas"]
    slab = s["vma_slab_bytes"] - b["vma_slab_bytes"]
    own = (s["process_anon"] - s["guest_anon"]) - (b["process_anon"] - b["guest_anon"])
    out = {"vmas_added": vmas, "vma_slab_mib": slab / MIB}
    if r["mode"] == "foldvm":
        out["engine_mem_mib"] = own / MIB
        out["net_saving_mib"] = (saved - own - max(slab, 0)) / MIB
        out["saving_kib_per_vma"] = saved / 1024 / vmas if vmas > 0 else None
        out["budget_exhausted"] = s.get("budget_exhausted")
    else:
        out["net_saving_mib"] = s["general_profit"] / MIB
    return out


def guest_measures(r):
    """First writes timed by the guests: to a fresh page by every guest but
    the writer (which writes its probe pages only in the reaction), to a
    merged page after merging by every guest but the writer and the prober
    (which timed its first writes during merging instead); churn over all
    guests.  None where no guest is left to time it (--quick has two)."""
    probe = r.get("probe") or {}
    fresh = [m for n, m in r["measures"].items() if n != r["writer"]]
    merged = [m for n, m in r["measures"].items() if n not in (r["writer"], probe.get("guest"))]
    every = list(r["measures"].values())
    churn_ns = sum(m["churn-ns"] for m in every)
    return {
        "fresh_write_us": us(median_of(m["first-write-median-ns"] for m in fresh)),
        "merged_write_us": us(median_of(m["merged-write-median-ns"] for m in merged)),
        "merged_write_p99_us": us(median_of(m["merged-write-p99-ns"] for m in merged)),
        "churn_pages_per_s": (sum(m["churn-pages"] for m in every) / (churn_ns / 1e9)
                              if churn_ns else None),
    }


def us(ns):
    return ns / 1000 if ns is not None else None


def merging_probe(r):
    """The prober's first writes as soon as its pages were merged, when
    that was (s since merging started, from the guest's own CLOCK_MONOTONIC
    stamp), and whether merging was still going on then: before the saving
    reached 99% of the ideal (t99), or, for foldvm, the engine merged other
    pages while the guest wrote."""
    probe = r.get("probe")
    if not probe:
        return {}
    m = r["measures"][probe["guest"]]
    if not probe["done"] or not m.get("merging-write-median-ns"):
        return {"merging_write_us": None, "merging_probe_done": False}
    t99 = convergence(r)["t99_s"]
    at = m["merging-done-mono-ns"] / 1e9 - probe["merging_start_mono"]
    return {"merging_write_us": m["merging-write-median-ns"] / 1000,
            "merging_write_p99_us": m["merging-write-p99-ns"] / 1000,
            "merging_merged_at_s": at,
            "merging_engine_merges": m["merging-engine-merges"],
            "merging_probe_done": True,
            "merging_before_t99": (t99 is None or at <= t99) or m["merging-engine-merges"] > 0}


def summarize(r):
    m = convergence(r)
    saved = r["samples"][-1]["saved"]
    m.update(idle(r))
    m.update(reaction(r))
    m.update(footprint(r, saved))
    m.update(guest_measures(r) if r["measures"] and any(
        x["churn-ns"] for x in r["measures"].values()) else {})
    m.update(merging_probe(r))
    return m


# ---------------------------------------------------------------- repeats --

def median_of(xs):
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return None
    mid = len(xs) // 2
    return xs[mid] if len(xs) % 2 else (xs[mid - 1] + xs[mid]) / 2.0


def spread(values):
    """Median and range of the values that exist; None when none does."""
    xs = [v for v in values if v is not None]
    if not xs:
        return None
    return {"median": median_of(xs), "min": min(xs), "max": max(xs),
            "n": len(xs), "of": len(values)}


def metric(runs, key):
    """A metric of one scenario over its repeats (idle keys nest)."""
    def get(run):
        if key in run["metrics"]:
            return run["metrics"][key]
        head, _, tail = key.partition(".")
        return run["metrics"].get(head, {}).get(tail) if tail else None
    return spread([get(run) for run in runs])


def ratio(reps, a, b, key, invert=False):
    """Median (and range) over repeats of a/b (b/a with invert), each ratio
    taken between the two scenarios' runs of the same repeat."""
    out = []
    for rep in reps:
        x, y = rep.get(a), rep.get(b)
        if not x or not y:
            continue
        vx, vy = x["metrics"].get(key), y["metrics"].get(key)
        if invert:
            vx, vy = vy, vx
        out.append(vx / vy if vx is not None and vy else None)
    return spread(out) if out else None


def nested(run, key):
    head, _, tail = key.partition(".")
    return run["metrics"].get(head, {}).get(tail)


def ratio_nested(reps, a, b, key_a, key_b):
    out = []
    for rep in reps:
        x, y = rep.get(a), rep.get(b)
        if x and y:
            vx, vy = nested(x, key_a), nested(y, key_b)
            out.append(vx / vy if vx is not None and vy else None)
    return spread(out) if out else None
