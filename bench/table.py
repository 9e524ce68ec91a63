#!/usr/bin/env python3
"""Markdown table of medians from the JSON lines that bench/compare.sh saved.

Usage: python3 bench/table.py RESULTS_DIR

Reads RESULTS_DIR/{wask,dask,ray}-*.jsonl (one JSON object per line, the
"meta" line names the system) and RESULTS_DIR/<system>.skipped (why a system
has no numbers), and prints one row per metric: the median over the runs for
dask, Ray and wask, and the ratios wask/dask and wask/Ray (wask's number
divided by the peer's; whether higher is better is in the "better" column).
"""
import json
import pathlib
import statistics
import sys

SYSTEMS = [("dask", "dask"), ("ray", "Ray"), ("wask", "wask")]

# (label, case, filter on the line, field, better, wask target from DESIGN.md, format)
METRICS = [
    ("map_gather 10k, tasks/s", "map_gather", {"n": 10000}, "tasks_per_s", "higher", "≥ 100,000", "{:,.0f}"),
    ("map_gather 100k, tasks/s", "map_gather", {"n": 100000}, "tasks_per_s", "higher", "", "{:,.0f}"),
    ("latency p50, µs", "latency", {}, "p50_us", "lower", "≤ 150", "{:,.0f}"),
    ("latency p99, µs", "latency", {}, "p99_us", "lower", "≤ 1,000", "{:,.0f}"),
    ("chain of 1000, s", "chain", {}, "wall_s", "lower", "≤ 0.15", "{:.3f}"),
    ("tree_reduce (16,383 tasks), s", "tree_reduce", {}, "wall_s", "lower", "≤ 0.3", "{:.3f}"),
    ("cpu_bound speedup vs serial", "cpu_bound", {}, "speedup_vs_serial", "higher", "≥ 1.8×", "{:.2f}×"),
    ("dedup: computed once", "dedup", {}, "computed_once", "", "yes", "{}"),
    ("sandbox instantiate+call+drop, µs/task", "sandbox", {}, "us_per_task", "lower", "≤ 20", "{:.1f}"),
    ("core_scale, transitions/s", "core_scale", {}, "transitions_per_s", "higher", "", "{:,.0f}"),
    ("core_scale, bytes/task", "core_scale", {}, "bytes_per_task", "lower", "", "{:,.0f}"),
]


def load(results):
    """{system: {"lines": [...], "runs": {run ids}, "meta": [...]}}"""
    data = {s: {"lines": [], "runs": set(), "meta": []} for s, _ in SYSTEMS}
    for path in sorted(results.glob("*.jsonl")):
        system = path.name.split("-")[0]
        if system not in data:
            continue
        lines = []
        for raw in path.read_text().splitlines():
            raw = raw.strip()
            if not raw.startswith("{"):
                continue
            try:
                lines.append(json.loads(raw))
            except json.JSONDecodeError:
                continue
        if any(l.get("case") != "meta" for l in lines):
            data[system]["runs"].add(path.stem.split("-")[1] if path.stem.count("-") else path.stem)
        data[system]["lines"].extend(l for l in lines if l.get("case") != "meta")
        data[system]["meta"].extend(l for l in lines if l.get("case") == "meta")
    return data


def median_of(lines, case, where, field):
    vals = [
        l[field]
        for l in lines
        if l.get("case") == case and field in l and all(l.get(k) == v for k, v in where.items())
    ]
    if not vals:
        return None
    if isinstance(vals[0], bool):
        return all(vals)
    return statistics.median(vals)


def fmt(value, pattern):
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return pattern.format(value)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    results = pathlib.Path(sys.argv[1])
    data = load(results)
    why = {}
    for s, name in SYSTEMS:
        skipped = results / f"{s}.skipped"
        if skipped.exists():
            why[s] = skipped.read_text().strip()
        elif not data[s]["runs"]:
            why[s] = "no results"

    head = ["metric", "better"] + [f"{name} (n={len(data[s]['runs'])})" for s, name in SYSTEMS]
    head += ["wask/dask", "wask/Ray", "wask target"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for label, case, where, field, better, target, pattern in METRICS:
        med = {s: median_of(data[s]["lines"], case, where, field) for s, _ in SYSTEMS}
        row = [label, better]
        row += [fmt(med[s], pattern) for s, _ in SYSTEMS]
        for peer in ("dask", "ray"):
            w, p = med["wask"], med[peer]
            if isinstance(w, (int, float)) and not isinstance(w, bool) and isinstance(p, (int, float)) \
                    and not isinstance(p, bool) and p:
                row.append(f"{w / p:,.2f}")
            else:
                row.append("—")
        row.append(target)
        print("| " + " | ".join(row) + " |")

    print()
    print("Medians over the runs (n = runs with results). Ratios are wask's number divided by the peer's:")
    print("for \"higher\" metrics a ratio above 1 favours wask, for \"lower\" ones a ratio below 1 does.")
    print("\"—\": the system has no such case (sandbox, core_scale and dedup are wask's or dask's own),")
    print("or it was not run at that size, or it failed.")
    for s, name in SYSTEMS:
        if s in why:
            print(f"- {name}: {why[s]}")
    for s, name in SYSTEMS:
        for m in data[s]["meta"][:1]:
            version = m.get(s if s != "dask" else "distributed", m.get("wask", ""))
            print(f"- {name} {version}: cpus {m.get('cpus')}, loadavg at start {m.get('loadavg_start')}, "
                  f"busy_iters {m.get('busy_iters')} ({m.get('busy_serial_us')} µs serial)")


if __name__ == "__main__":
    main()
