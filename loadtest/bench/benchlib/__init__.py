"""Benchmark comparison of Chorus against reference y-websocket servers and the bare relay.

Layout:
- ``machine``   what the run ran on: CPU, memory, kernel, tool versions.
- ``procstat``  samples a process's CPU time and RSS from /proc while a step runs.
- ``servers``   installs, starts and stops each server under test on 127.0.0.1.
- ``generator`` runs ``chorus-loadtest`` subcommands and reads their JSON reports.
- ``scenarios`` the scenarios (A, B, S, C, D, P, X) built from ``loadtest/scenarios/*.toml``.
- ``figures``   turns raw reports into the figures the tables and charts show.
- ``targets``   the issue's targets and whether Chorus met them.
- ``svg``       dependency-free SVG bar and line charts.
- ``charts``    which charts are drawn from the figures.
- ``markdown``  writes BENCHMARKS.md.
"""
