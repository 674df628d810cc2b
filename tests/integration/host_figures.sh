#!/bin/sh
# host.qmp's figures are the workers' typed figures added up by one rule
# (runner/figures.h), live: three guests in two trust domains (two
# workers, each with its engine, merging), and query-dedup-host's totals
# checked against its own `domains` entries (each worker's figures, as
# it sent them): counts add up; max-map-count, pass-cpu-* and the
# memory-pressure readings take the largest; memory-pressure-pauses adds
# up; flags are set if any worker's is; process-rss/pss are the workers'
# plus the supervisor's own.  Every key a worker sends is in the totals
# and the other way round.  Also: query-dedup-census's classes add up to
# the pages of query-vms's guests.
. "$(dirname "$0")/lib.sh"
require_kvm
command -v python3 >/dev/null || fail "python3 missing (scripts/setup installs it)"

# merging BIN: both domains' engines have merged something
merging() {
	$CTL raw host '{"execute":"query-dedup-host"}' >"$TMP/h" 2>/dev/null &&
		python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))["return"]["domains"]
sys.exit(0 if len(d) == 2 and all(x.get("merges", 0) > 0 for x in d) else 1)' "$TMP/h"
}

for bin in $VARIANTS; do
	RUN="$TMP/run-$bin"
	CTL="$BUILDDIR/foldctl --run-dir $RUN"
	persist_start "$bin" "$RUN"
	$CTL create name=r1,mem=32M,domain=red,steps=fill+wait || fail "create r1"
	$CTL create name=r2,mem=32M,domain=red,steps=fill+wait || fail "create r2"
	$CTL create name=b1,mem=32M,domain=blue,steps=fill+wait || fail "create b1"
	wait_for 120 merging || { cat "$TMP/h"; fail "the two engines did not merge"; }
	$CTL raw host '{"execute":"query-dedup-host"}' >"$TMP/host" || fail "query-dedup-host"
	python3 -c '
import json, sys
h = json.load(open(sys.argv[1]))["return"]
doms = h.pop("domains")
assert len(doms) == 2, doms
for d in doms:
    for k in ("domain", "pid", "cgroup"):
        d.pop(k, None)
keys = set(h)
assert all(set(d) == keys for d in doms), (keys, [set(d) for d in doms])
def largest(k):
    return k in ("max-map-count",) or k.startswith("pass-cpu-") or \
        (k.startswith("memory-pressure-") and k != "memory-pressure-pauses")
for k, v in h.items():
    vals = [d[k] for d in doms]
    if isinstance(v, bool):
        want = any(vals)
    elif k in ("process-rss-bytes", "process-pss-bytes"):
        assert v > sum(vals), (k, v, vals)   # the supervisor is on top
        continue
    elif largest(k):
        want = max(vals)
    else:
        want = sum(vals)
    assert v == want, (k, v, vals)
assert h["enabled"] and h["guests"] == 3 and h["merges"] > 0, h
' "$TMP/host" || { cat "$TMP/host"; fail "the host's figures are not the workers' added up"; }
	$CTL raw host '{"execute":"query-dedup-census"}' >"$TMP/census" || fail "census"
	$CTL raw host '{"execute":"query-vms"}' >"$TMP/vms" || fail "query-vms"
	python3 -c '
import json, sys
c = json.load(open(sys.argv[1]))["return"]
vms = json.load(open(sys.argv[2]))["return"]
assert sorted(v["name"] for v in vms) == ["b1", "r1", "r2"], vms
assert len({v["pid"] for v in vms}) == 2, vms
pages = sum(v["memory"] // 4096 for v in vms)
parts = c["zero-pages"] + c["same-address-pages"] + c["unique-pages"] + \
    sum(c[k] for k in ("run-1-pages", "run-2-15-pages", "run-16-511-pages", "run-512-pages"))
assert c["pages"] == pages == parts, (c, pages, parts)
' "$TMP/census" "$TMP/vms" || { cat "$TMP/census" "$TMP/vms"; fail "census of two workers"; }
	kill -TERM "$FVPID"
	wait "$FVPID" 2>/dev/null
done
echo "host_figures: host.qmp's totals are the two workers' figures added up, pressure fields included"
