#!/usr/bin/env python3
"""Unit tests of foldbench's figures: synthetic records, no root, no KVM."""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fb_metrics as M  # noqa: E402
import fb_report as R  # noqa: E402
from fb_session import converge_end  # noqa: E402

MIB = 1 << 20


def record(saved_mib, ideal_mib=100, cpu_per_s=0.1, mode="foldvm"):
    samples = [{"t": float(i), "saved": int(x * MIB), "cpu_ns": int(i * cpu_per_s * 1e9)}
               for i, x in enumerate(saved_mib)]
    return {"ideal": {"ideal-bytes": ideal_mib * MIB}, "samples": samples, "end": "window",
            "mode": mode}


class Convergence(unittest.TestCase):
    def test_times_are_against_the_ideal(self):
        m = M.convergence(record([0, 40, 60, 95, 99.5, 100]))
        self.assertEqual((m["t50_s"], m["t90_s"], m["t99_s"]), (2.0, 3.0, 4.0))

    def test_unfinished_run_reports_not_reached(self):
        m = M.convergence(record([0, 10, 20, 25]))
        self.assertIsNone(m["t90_s"])
        self.assertEqual(m["pct_of_ideal"], 25.0)
        runs = [{"metrics": m}]
        self.assertEqual(R.time_cell(runs, "t90_s"), "not reached: 25% of the ideal at 3 s")

    def test_times_are_against_the_goal_share_against_the_ideal(self):
        r = record([0, 40, 60, 95, 97, 98])
        r["goal_bytes"] = 98 * MIB      # a prober rewrote 2 MiB of the ideal
        m = M.convergence(r)
        self.assertEqual((m["t90_s"], m["t99_s"]), (3.0, 5.0))
        self.assertEqual(m["pct_of_ideal"], 98.0)
        self.assertEqual(m["saved_goal_mib"], 98.0)
        self.assertEqual(M.convergence(record([0, 40, 97]))["saved_goal_mib"], 97.0)

    def test_efficiency_counts_cpu_until_t99(self):
        m = M.convergence(record([0, 50, 99, 99, 99], cpu_per_s=0.5))
        self.assertAlmostEqual(m["cpu_s_to_t99"], 1.0)
        self.assertAlmostEqual(m["efficiency_mib_per_cpu_s"], 99.0)


class Repeats(unittest.TestCase):
    def test_spread(self):
        self.assertEqual(M.spread([3, None, 1, 2]),
                         {"median": 2, "min": 1, "max": 3, "n": 3, "of": 4})
        self.assertIsNone(M.spread([None]))

    def test_median_of_even_count(self):
        self.assertEqual(M.median_of([4, 1, 3, 2]), 2.5)

    def test_ratio_is_taken_within_each_repeat(self):
        def run(v):
            return {"metrics": {"x": v}}
        reps = [{"a": run(2), "b": run(1)}, {"a": run(9), "b": run(3)},
                {"a": run(4), "b": run(4)}]
        r = M.ratio(reps, "a", "b", "x")
        self.assertEqual((r["median"], r["min"], r["max"]), (2.0, 1.0, 3.0))
        self.assertEqual(M.ratio(reps, "b", "a", "x", invert=True)["median"], 2.0)

    def test_ratio_of_a_missing_value_is_not_a_number(self):
        reps = [{"a": {"metrics": {"x": None}}, "b": {"metrics": {"x": 1}}}]
        self.assertIsNone(M.ratio(reps, "a", "b", "x"))


class ConvergeEnd(unittest.TestCase):
    def samples(self, saved):
        return [{"t": float(i), "saved": x} for i, x in enumerate(saved)]

    def test_converged(self):
        self.assertEqual(converge_end(self.samples([0, 99]), 100, 60, 20), "converged")

    def test_window(self):
        self.assertEqual(converge_end(self.samples([0] * 61), 100, 60, 20), "window")

    def test_plateau_only_after_a_tenth(self):
        flat_low = self.samples([5] * 30)
        self.assertIsNone(converge_end(flat_low, 100, 600, 20))
        self.assertEqual(converge_end(self.samples([50] * 30), 100, 600, 20), "plateau")


class MergingProbe(unittest.TestCase):
    """The first write during merging is only called that when merging was
    still going on, and is missing (not zero) when the probe never ran."""

    def probed(self, at_s, merges, done=True, median_ns=3000):
        r = record([0, 40, 80, 99.5, 100])          # t99 at 3 s
        r["probe"] = {"guest": "g0", "done": done, "merging_start_mono": 100.0}
        r["measures"] = {"g0": {"merging-write-median-ns": median_ns if done else 0,
                                "merging-write-p99-ns": 9000, "merging-wait-ns": 10**9,
                                "merging-done-mono-ns": int((100.0 + at_s) * 1e9),
                                "merging-engine-merges": merges}}
        return M.merging_probe(r)

    def test_before_t99_is_during_merging(self):
        m = self.probed(at_s=2.0, merges=-1)
        self.assertEqual(m["merging_write_us"], 3.0)
        self.assertAlmostEqual(m["merging_merged_at_s"], 2.0)
        self.assertTrue(m["merging_before_t99"])

    def test_after_t99_is_flagged(self):
        self.assertFalse(self.probed(at_s=4.0, merges=-1)["merging_before_t99"])
        # foldvm's engine merging other pages meanwhile counts as during
        self.assertTrue(self.probed(at_s=4.0, merges=7)["merging_before_t99"])

    def test_unfinished_probe_is_not_a_value(self):
        m = self.probed(at_s=0, merges=0, done=False)
        self.assertIsNone(m["merging_write_us"])
        runs = [{"metrics": m, "probe": {"guest": "g0"}}]
        self.assertEqual(R.merging_cell(runs), "- (1 of 1 runs: pages not merged in time)")


class Sizes(unittest.TestCase):
    def test_parse_size(self):
        self.assertEqual(M.parse_size("1G"), 1 << 30)
        self.assertEqual(M.parse_size("256M"), 256 * MIB)
        self.assertEqual(M.parse_size("512MiB"), 512 * MIB)
        self.assertEqual(M.parse_size("64"), 64 * MIB)


if __name__ == "__main__":
    unittest.main()
