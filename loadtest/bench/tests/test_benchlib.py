"""Unit tests of the bench's pure parts: parsing, figures, targets, charts and the report.

Run: python3 -m unittest discover -s loadtest/bench/tests
"""

from __future__ import annotations

import os
import sys
import tempfile
import unittest
import xml.etree.ElementTree as ET
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchlib import charts, figures, generator, machine, markdown, procstat, servers, svg  # noqa: E402
from benchlib.targets import TARGETS, evaluate  # noqa: E402


class ProcParsing(unittest.TestCase):
    def test_cpu_seconds_counts_fields_after_the_last_parenthesis(self):
        # A command name with spaces and parentheses must not shift the fields.
        stat = "42 (we ird) name) S 1 42 42 0 -1 4194560 100 0 0 0 250 150 0 0 20 0 1 0 5 0 0"
        self.assertAlmostEqual(procstat.parse_cpu_seconds(stat), 400 / procstat.CLOCK_TICKS)

    def test_cpu_seconds_of_garbage_is_none(self):
        self.assertIsNone(procstat.parse_cpu_seconds("no parenthesis here"))
        self.assertIsNone(procstat.parse_cpu_seconds("1 (x) S 1 2"))

    def test_status_kib(self):
        status = "Name:\tchorus\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\n"
        self.assertEqual(procstat.parse_status_kib(status, "VmRSS"), 1024)
        self.assertEqual(procstat.parse_status_kib(status, "VmHWM"), 2048)
        self.assertIsNone(procstat.parse_status_kib(status, "VmSwap"))

    def test_series_summary_and_rates(self):
        series = procstat.Series(1, [(0.0, 1.0, 1000), (1.0, 1.5, 3000), (1.05, 1.5, 2000), (2.0, 2.5, 2048)])
        summary = series.summary()
        self.assertEqual(summary["cpu_s"], 1.5)
        self.assertEqual(summary["rss_kib_peak"], 3000)
        self.assertAlmostEqual(summary["cpu_percent_mean"], 75.0)
        rates = series.rates()
        # The 0.05 s interval is merged into the next one rather than reported as a spike.
        self.assertEqual(len(rates), 2)
        self.assertAlmostEqual(rates[0][1], 50.0)
        self.assertAlmostEqual(rates[1][1], 100.0)

    def test_sampler_reads_this_process(self):
        with procstat.Sampler([os.getpid()], 0.01) as s:
            sum(i * i for i in range(200_000))
        summary = s.series[0].summary()
        self.assertGreaterEqual(summary["samples"], 2)
        self.assertGreater(summary["rss_kib_peak"], 0)


class Generator(unittest.TestCase):
    def test_flags_map_like_the_scenario_runner(self):
        argv = generator.flag_argv({"rooms": 100, "verify": True, "json": False, "url": ["a", "b"],
                                    "ramp_up": "5s", "rate": 1.5})
        self.assertEqual(argv, ["--rooms", "100", "--verify", "--url", "a", "--url", "b",
                                "--ramp-up", "5s", "--rate", "1.5"])

    def test_scenario_files_parse(self):
        root = Path(__file__).resolve().parents[2] / "scenarios"
        for path in sorted(root.glob("*.toml")):
            data = generator.load_scenario(path)
            self.assertTrue(data["step"], path)
            for step in data["step"]:
                self.assertIn(step["command"], ("run", "ramp", "idle", "join"), path)


class Servers(unittest.TestCase):
    def test_listening_line(self):
        line = '{"timestamp":"x","level":"INFO","fields":{"message":"listening","addr":"127.0.0.1:4567"}}'
        self.assertEqual(servers.listening_port(line), 4567)
        self.assertIsNone(servers.listening_port('{"fields":{"message":"room opened"}}'))
        self.assertIsNone(servers.listening_port("running at '127.0.0.1' on port 1234"))
        self.assertIsNone(servers.listening_port('{"fields":{"message":"listening","addr":"nope"}}'))

    def test_the_baseline_build_comes_from_its_environment_variable(self):
        kind = servers.KINDS["chorus-baseline"]
        with tempfile.TemporaryDirectory() as tmp:
            saved = os.environ.pop("CHORUS_BASELINE_BIN", None)
            try:
                missing = servers.prepare(kind, Path(tmp), Path(tmp))
                self.assertIn("CHORUS_BASELINE_BIN", missing.error or "")
                os.environ["CHORUS_BASELINE_BIN"] = "/bin/true"
                found = servers.prepare(kind, Path(tmp), Path(tmp))
                self.assertIsNone(found.error)
                self.assertEqual(found.argv, ["/bin/true"])
            finally:
                os.environ.pop("CHORUS_BASELINE_BIN", None)
                if saved is not None:
                    os.environ["CHORUS_BASELINE_BIN"] = saved

    def test_hocuspocus_kinds_speak_hocuspocus_on_their_endpoint(self):
        chorus = servers.KINDS["chorus-hocuspocus"]
        self.assertEqual((chorus.family, chorus.protocol, chorus.path), ("chorus", "hocuspocus", "/hocuspocus"))
        node = servers.KINDS["hocuspocus-4"]
        self.assertEqual((node.family, node.protocol, node.path), ("node", "hocuspocus", ""))
        self.assertTrue(node.npm_spec.startswith("@hocuspocus/server@4"))
        repo = Path(__file__).resolve().parents[3]
        self.assertTrue((repo / node.script).is_file(), node.script)
        self.assertEqual(servers.KINDS["chorus"].protocol, "y-websocket")

    def test_step_argv_passes_the_protocol_of_the_server_kind(self):
        from benchlib import scenarios
        step = {"command": "idle", "connections": 10}
        argv = scenarios._step_argv(step, ["ws://h:1/hocuspocus"], [7], None, "hocuspocus")
        self.assertEqual(argv[:5], ["idle", "--connections", "10", "--protocol", "hocuspocus"])
        self.assertIn("ws://h:1/hocuspocus", argv)
        plain = scenarios._step_argv(step, ["ws://h:1/ws"], [7], None)
        self.assertNotIn("--protocol", plain)

    def test_free_port_is_free(self):
        port = servers.free_port()
        self.assertFalse(servers.accepts(port))


class Machine(unittest.TestCase):
    def test_cpu_model_and_memory(self):
        self.assertEqual(machine.cpu_model("processor\t: 0\nmodel name\t: AMD EPYC 7B13\n"), "AMD EPYC 7B13")
        self.assertEqual(machine.cpu_model(""), "unknown")
        self.assertEqual(machine.mem_total_kib("MemTotal:       24684104 kB\n"), 24684104)


def run_record(deliveries=9000.0, p99=5.0, cpu=45.0, lost=0, saturated=False, presence=None):
    report = {
        "updates": {"sent": 1000, "deliveries_per_sec": deliveries, "lost": lost, "duplicated": 0,
                    "echoed": 0, "latency_ms": {"p50_ms": 1.0, "p99_ms": p99, "p999_ms": p99, "max_ms": p99},
                    "cross_node_latency_ms": None},
        "presence": presence,
        "connections": {"attempted": 1000, "synced": 1000, "disconnected": 0, "handshake_ms": {"p99_ms": 3.0}},
        "generator": {"cpu_percent": 30.0, "saturated": saturated, "ticks_late": False},
        "servers": [{"pid": 1, "cpu_percent": cpu}],
        "verify": {"ok": True},
    }
    return {"generator": {"argv": ["x", "run"], "exit_code": 0, "report": report, "error": None},
            "samples": [{"pid": 1, "rss_kib_peak": 2048, "points": [[0, 0.0, 2048], [1, 0.5, 2048]]}],
            "servers_alive_after": [True], "step": 1}


class Figures(unittest.TestCase):
    def test_cpu_per_delivery(self):
        # Half a core for 50,000 deliveries/s is 10 µs each.
        self.assertAlmostEqual(figures.cpu_us_per_delivery(50.0, 50_000.0), 10.0)
        self.assertIsNone(figures.cpu_us_per_delivery(None, 1.0))
        self.assertIsNone(figures.cpu_us_per_delivery(10.0, 0.0))

    def test_run_figures(self):
        f = figures.run_figures(run_record(deliveries=10_000.0, cpu=20.0))
        self.assertAlmostEqual(f["cpu_us_per_delivery"], 20.0)
        self.assertEqual(f["verify"], "OK")
        self.assertEqual(f["server_peak_rss_mib"], 2.0)
        self.assertIsNone(f["error"])

    def test_ack_latency_is_a_figure_of_hocuspocus_runs_only(self):
        record = run_record()
        self.assertIsNone(figures.run_figures(record)["ack_p99_ms"])
        self.assertIsNone(markdown._derived(figures.run_figures(record), "ack_p50_p99_p999"))
        record["generator"]["report"]["acks"] = {
            "expected": 10, "received": 10, "refused": 0, "unmatched": 0, "pending": 0,
            "latency_ms": {"p50_ms": 1.5, "p99_ms": 4.25, "p999_ms": 12.0}}
        f = figures.run_figures(record)
        self.assertEqual((f["ack_p50_ms"], f["ack_p99_ms"], f["ack_p999_ms"]), (1.5, 4.25, 12.0))
        self.assertEqual(markdown._derived(f, "ack_p50_p99_p999"), "1.50 / 4.25 / 12.0")

    def test_presence_only_runs_divide_by_presence_deliveries(self):
        presence = {"deliveries_per_sec": 5000.0, "latency_ms": {"p50_ms": 1, "p99_ms": 2}, "final_state_missing": 0}
        record = run_record(cpu=10.0, presence=presence)
        record["generator"]["report"]["updates"]["sent"] = 0
        f = figures.run_figures(record)
        self.assertIsNone(f["deliveries_per_s"])
        self.assertAlmostEqual(f["cpu_us_per_delivery"], 20.0)

    def test_dead_server_is_an_error(self):
        record = run_record()
        record["servers_alive_after"] = [False]
        self.assertIn("died", figures.run_figures(record)["error"])

    def test_ramp_best_skips_stages_over_the_limit_lossy_or_saturated(self):
        stages = [run_record(1000, 5), run_record(5000, 20), run_record(9000, 10, lost=3),
                  run_record(12000, 30, saturated=True), run_record(15000, 80)]
        for rate, stage in zip([1, 2, 3, 4, 5], stages):
            stage["rate"] = rate
        f = figures.ramp_figures({"stages": stages, "p99_limit_ms": 50.0, "stopped_because": "p99"})
        self.assertEqual(f["best_deliveries_per_s"], 5000)
        self.assertEqual(f["best_rate"], 2)
        self.assertEqual(f["stages_run"], 5)

    def test_ramp_without_a_good_stage(self):
        f = figures.ramp_figures({"stages": [run_record(1000, 90)], "p99_limit_ms": 50.0})
        self.assertIsNone(f["best_deliveries_per_s"])

    def test_idle_figures_convert_to_kb(self):
        record = {"generator": {"report": {"attempted": 10, "synced": 10, "failed": 0, "dropped_while_held": 0,
                                           "server": {"kib_per_connection": 4.0}}}}
        f = figures.idle_figures(record)
        self.assertAlmostEqual(f["kb_per_conn"], 4.096)
        self.assertTrue(f["held"])
        record["generator"]["report"]["dropped_while_held"] = 1
        self.assertFalse(figures.idle_figures(record)["held"])


class Targets(unittest.TestCase):
    def target(self, prefix):
        return next(t for t in TARGETS if t.text.startswith(prefix))

    def test_met_and_missed(self):
        t = self.target("D: 10 MiB")
        self.assertEqual(evaluate(t, [{"step2_p50_ms": 12.0}]).verdict, "met")
        self.assertEqual(evaluate(t, [{"step2_p50_ms": 30.5}]).verdict, "missed")
        self.assertEqual(evaluate(t, []).verdict, "not measured")
        self.assertEqual(evaluate(t, [{"step2_p50_ms": None}]).verdict, "not measured")

    def test_relative_targets_compare_with_the_other_server_of_the_run(self):
        t = self.target("A: server CPU per delivery ≤ 1.25×")
        relay = {"bare-relay": [{"cpu_us_per_delivery": 10.0}]}
        met = evaluate(t, [{"cpu_us_per_delivery": 12.5}], relay)
        self.assertEqual((met.verdict, met.limit), ("met", 12.5))
        self.assertEqual(evaluate(t, [{"cpu_us_per_delivery": 12.6}], relay).verdict, "missed")
        self.assertEqual(evaluate(t, [{"cpu_us_per_delivery": 1.0}], {}).verdict, "not comparable")
        failed = {"bare-relay": [{"cpu_us_per_delivery": 10.0, "error": "died"}]}
        self.assertEqual(evaluate(t, [{"cpu_us_per_delivery": 1.0}], failed).verdict, "not comparable")
        s = self.target("S: deliveries/s at p99 < 50 ms ≥ 0.9×")
        one_s = {"chorus-fsync-1s": [{"best_deliveries_per_s": 100_000}]}
        self.assertEqual(evaluate(s, [{"best_deliveries_per_s": 90_000}], one_s).verdict, "met")
        self.assertEqual(evaluate(s, [{"best_deliveries_per_s": 89_999}], one_s).verdict, "missed")

    def test_size_dependent_targets_need_the_full_size(self):
        t = self.target("C: 19,900")
        self.assertEqual(evaluate(t, [{}, {"held": True, "attempted": 3000}]).verdict, "not comparable")
        self.assertEqual(evaluate(t, [{}, {"held": True, "attempted": 19_900}]).verdict, "met")
        self.assertEqual(evaluate(t, [{}, {"held": False, "attempted": 19_900}]).verdict, "missed")

    def test_saturated_generator_is_noted(self):
        v = evaluate(self.target("A: p99"), [{"p99_ms": 20.0, "generator_flag": "generator saturated"}],
                     {"ws-0.1.1": [{"p99_ms": 5.0}]})
        self.assertEqual(v.verdict, "missed")
        self.assertIn("saturated", v.note)


class Svg(unittest.TestCase):
    def test_ticks(self):
        self.assertEqual(svg.nice_ticks(0, 9), [0, 2, 4, 6, 8, 10])
        self.assertEqual(svg.log_ticks(3, 250), [1, 10, 100, 1000])
        self.assertEqual(svg.fmt(200_000), "200k")

    def test_charts_are_well_formed_xml_and_escape_text(self):
        bar = svg.bar_chart("a < b & c", ["x", "y"], [("s<1>", [1.0, None]), ("s2", [3.0, 0.5])],
                            "ms", log=True, threshold=(2.0, "limit"))
        line = svg.line_chart("t", [("a", [(1, 1), (10, 100)]), ("b", [])], "x", "y", log_y=True,
                              log_x=True, threshold=(50, "50 ms"), markers=True)
        for text in (bar, line):
            root = ET.fromstring(text)
            self.assertTrue(root.tag.endswith("svg"))
        self.assertIn("a &lt; b &amp; c", bar)
        self.assertIn("n/a", bar)


class Report(unittest.TestCase):
    def results(self):
        idle = {"generator": {"argv": ["x", "idle"], "report": {
            "attempted": 19_900, "synced": 19_900, "failed": 0, "dropped_while_held": 0,
            "server": {"kib_per_connection": 140.0, "rss_kib_before": 1024, "rss_kib_after": 2048}}},
            "servers_alive_after": [True], "samples": []}
        return {
            "meta": {"started": "s", "finished": "f", "elapsed_min": 1.0, "quick": False,
                     "scenarios": ["A", "C"], "servers": ["chorus", "bare-relay"], "command": "python3 b",
                     "build_command": "cargo build", "loadavg_start": [1, 1, 1], "loadavg_end": [1, 1, 1],
                     "machine": {"cpu_model": "cpu", "nproc": 2, "mem_total_kib": 1048576, "kernel": "k",
                                 "os": "os", "git_commit": "abc", "git_dirty": False, "rustc": "r",
                                 "node": "n", "npm": "n", "redis_server": "r", "python": "p",
                                 "nofile_limit_raised": [20000, 20000]}},
            "servers": {"chorus": {"label": "Chorus", "role": "under test", "version": "v", "notes": []},
                        "bare-relay": {"label": "bare relay", "role": "yardstick", "version": "v", "notes": []}},
            "scenarios": {"A": {"chorus": {"steps": [run_record(cpu=90.0)]},
                                "bare-relay": {"steps": [run_record(cpu=10.0)]}},
                          "C": {"chorus": {"steps": [idle, idle]}, "bare-relay": {"skipped": "because"}}},
        }

    def test_render_has_tables_verdicts_and_chart_links(self):
        results = self.results()
        with tempfile.TemporaryDirectory() as tmp:
            drawn = charts.draw(results, Path(tmp))
            self.assertIn("latency-a-b", drawn)
            self.assertTrue((Path(tmp) / drawn["idle-memory"]).is_file())
            text = markdown.render(results, drawn, "loadtest/bench/results", "hand-written notes")
        self.assertIn("| A: server CPU per delivery ≤ 1.25× the bare relay | 100 | "
                      "≤ 1.25× bare relay (yardstick) = 13.9 µs | **missed** |", text)
        self.assertIn("| A: p99 latency ≤ 2× @y/websocket-server 0.1.1 | 5.00 | ≤ 2× @y/websocket-server 0.1.1 | "
                      "not comparable (ws-0.1.1 was not measured) |", text)
        self.assertIn("| C: 19,900 idle connections held | yes | all held | **met** |", text)
        self.assertIn("| B: server CPU per delivery ≤ 1.25× the bare relay | — | ≤ 1.25× bare relay (yardstick) "
                      "| not measured |", text)
        # The at-a-glance table: Chorus is the only contender, so it is the row's best.
        self.assertIn("## How Chorus compares", text)
        self.assertIn("| A: server CPU per delivery (µs) | **100** | 11.1 |", text)
        self.assertIn("bare relay: not run: because", text)
        self.assertIn("(loadtest/bench/results/charts/idle-memory.svg)", text)
        self.assertIn("hand-written notes", text)

    def test_cells(self):
        self.assertEqual(markdown.cell(None, "num"), "—")
        self.assertEqual(markdown.cell(12345.6, "int"), "12,346")
        self.assertEqual(markdown.cell(0.01234, "num"), "0.012")
        self.assertEqual(markdown.cell("a|b", "str"), "a\\|b")


if __name__ == "__main__":
    unittest.main()
