"""The benchmark's report: ratios against the issue's targets, one set of tables
printed (rich) and written as ``latest.md`` plus a timestamped JSON."""

from __future__ import annotations

import json
import operator
from pathlib import Path

from rich.table import Table

from bench.api import FLOOR
from bench.common import console, summary

BULK_PYTHON, BULK_HTTP, BULK_PIKA = "claw bulk, Python API", "claw bulk, POST /api/v1/tasks/bulk", "raw pika, pipelined confirms"
STATUS_TARGET_RPS = 3000
#: bench.systems.measure_throughput's CPU keys, in column order.
CPU_COLUMNS = ("enqueue_cpu_client", "enqueue_cpu_Redis", "enqueue_cpu_RabbitMQ",
               "process_cpu_workers", "process_cpu_Redis", "process_cpu_RabbitMQ")


def label(count: int) -> str:
    """10000 -> 10k, 1000000 -> 1M, 400 -> 400."""
    if count >= 1_000_000 and count % 1_000_000 == 0:
        return f"{count // 1_000_000}M"
    if count >= 1000 and count % 1000 == 0:
        return f"{count // 1000}k"
    return str(count)


def fmt(stat: dict[str, float], digits: int = 0) -> str:
    return f"{stat['median']:,.{digits}f} ({stat['min']:,.{digits}f}–{stat['max']:,.{digits}f})"


def summarize_api(raw: dict[str, dict[int, list[dict]]]) -> dict[str, dict[str, dict]]:
    """Per endpoint and record count: req/s and p99 summaries, summed errors."""
    return {endpoint: {label(count): {"records": count,
                                      "rps": summary([r["rps"] for r in runs]),
                                      "p99_ms": summary([r["p99_ms"] for r in runs]),
                                      "requests": sum(r["requests"] for r in runs),
                                      "non_2xx": sum(r["non_2xx"] for r in runs),
                                      "socket_errors": sum(r["socket_errors"] for r in runs)}
                        for count, runs in by_count.items()}
            for endpoint, by_count in raw.items()}


def median(stat: dict[str, float]) -> float:
    return stat["median"]


def ratios(results: dict) -> list[dict]:
    """Every ratio the issue names, with its target and whether this run met it."""
    rows: list[dict] = []

    def add(name: str, value: float, op=None, target: float | None = None, flagged: str = "") -> None:
        met = "—" if op is None else ("met" if op(value, target) else "missed")
        if flagged:
            met = f"flagged: {flagged}"
        symbol = {operator.ge: ">=", operator.le: "<="}.get(op, "")
        rows.append({"name": name, "value": value, "target": f"{symbol} {target:,g}" if op else "—", "met": met})

    systems = results["systems"]
    claw, dramatiq, celery = (systems[name] for name in ("claw-pipeline", "raw Dramatiq", "Celery"))
    add("process claw/raw-Dramatiq", median(claw["process"]) / median(dramatiq["process"]), operator.ge, 0.85)
    add("process claw/Celery", median(claw["process"]) / median(celery["process"]), operator.ge, 1.5)
    add("enqueue claw/raw-Dramatiq", median(claw["enqueue"]) / median(dramatiq["enqueue"]), operator.ge, 0.9)
    add("enqueue claw/Celery", median(claw["enqueue"]) / median(celery["enqueue"]))
    bulk = results["bulk"]
    add("bulk Python API/raw pika", median(bulk[BULK_PYTHON]) / median(bulk[BULK_PIKA]), operator.ge, 0.6)
    add("bulk HTTP/raw pika", median(bulk[BULK_HTTP]) / median(bulk[BULK_PIKA]), operator.ge, 0.6)
    api = results.get("api")
    if api:
        counts = sorted(row["records"] for row in api["status lookup"].values())
        small, big = label(counts[0]), label(counts[-1])
        floor = api.get(FLOOR, {}).get(label(0))
        for endpoint, by_count in api.items():
            if endpoint == FLOOR:
                continue
            errors = sum(row["non_2xx"] + row["socket_errors"] for row in by_count.values())
            flagged = f"{errors:,} error responses" if errors else ""
            if small != big:
                add(f"cost {big}/{small} {endpoint} (req/s at {small} / req/s at {big})",
                    median(by_count[small]["rps"]) / median(by_count[big]["rps"]), operator.le, 1.3, flagged)
        for key, row in api["status lookup"].items():
            errors = row["non_2xx"] + row["socket_errors"]
            add(f"status lookup req/s at {key} records", median(row["rps"]), operator.ge, STATUS_TARGET_RPS,
                f"{errors:,} error responses" if errors else "")
            if floor:
                add(f"status lookup at {key} records / floor (same gunicorn, fixed JSON)", median(row["rps"]) / median(floor["rps"]))
    vectorize = results.get("vectorize")
    if vectorize:
        add("vectorize/raw embedder", median(vectorize["vectorize"]) / median(vectorize["raw"]), operator.ge, 0.9)
    return rows


def tables(results: dict) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, headers, rows) for every section; the same rows are printed and written."""
    s = results["settings"]
    out = [(f"Throughput (N={s['n']:,} queued then drained; workers {s['concurrency']}) and latency "
            f"({s['latency']} round trips, submit -> SUCCESS seen by the client)",
            ["system", "enqueue msg/s", "process msg/s", "latency p50 ms", "latency p99 ms"],
            [[name, fmt(x["enqueue"]), fmt(x["process"]), fmt(x["p50_ms"], 2), fmt(x["p99_ms"], 2)]
             for name, x in results["systems"].items()]),
           ("CPU per message, microseconds (medians): where the time goes",
            ["system", "enqueue: client", "enqueue: Redis", "enqueue: RabbitMQ", "process: workers",
             "process: Redis", "process: RabbitMQ", "process: total"],
            [[name] + [f"{x[key]['median']:,.0f}" for key in CPU_COLUMNS]
             + [f"{sum(x[key]['median'] for key in CPU_COLUMNS[3:]):,.0f}"]
             for name, x in results["systems"].items() if all(key in x for key in CPU_COLUMNS)]),
           (f"Bulk enqueue (N={s['n']:,}, batches of 1,000)", ["path", "msg/s"],
            [[name, fmt(x)] for name, x in results["bulk"].items()])]
    if results.get("api"):
        rows = []
        for endpoint, by_count in results["api"].items():
            for key, row in by_count.items():
                errors = row["non_2xx"] + row["socket_errors"]
                rows.append([endpoint, "—" if endpoint == FLOOR else key, fmt(row["rps"]) + (" ⚠ ERRORS" if errors else ""), fmt(row["p99_ms"], 1),
                             f"{row['non_2xx']:,}", f"{row['socket_errors']:,}", f"{row['requests']:,}"])
        out.append((f"API under wrk ({s['api_wrk']}, {s['api_duration']} per run; gunicorn, 2 workers)",
                    ["endpoint", "records", "req/s", "p99 ms", "non-2xx/3xx", "socket errors", "requests"], rows))
    if results.get("vectorize"):
        v = results["vectorize"]
        out.append((f"Vectorize ({v['chunks']} chunks, corpus x{s['vectorize_copies']})", ["path", "chunks/s"],
                    [["raw embedder (passages)", fmt(v["raw"], 1)], ["vectorize_document (worker)", fmt(v["vectorize"], 1)]]))
    out.append(("Ratios and targets (medians)", ["ratio", "value", "target", "result"],
                [[r["name"], f"{int(r['value']):,}" if r["value"] >= 100 else f"{r['value']:.2f}", r["target"], r["met"]]
                 for r in results["ratios"]]))
    return out


def header(results: dict) -> str:
    machine, s = results["machine"], results["settings"]
    start, end = (" / ".join(f"{x:.2f}" for x in machine[key]) for key in ("load_start", "load_end"))
    return (f"Benchmark {results['when']} (run {results['run']}): {machine['cpus']} CPUs, load average (1/5/15 min) {start} at start, {end} at end; "
            f"reps={s['reps']}, systems alternated")


def write(results: dict, out: Path) -> None:
    sections = tables(results)
    console.print(f"[bold]{header(results)}[/]")
    for title, headers, rows in sections:
        table = Table(title=title)
        for column in headers:
            table.add_column(column)
        for row in rows:
            table.add_row(*row)
        console.print(table)

    out.mkdir(parents=True, exist_ok=True)
    (out / f"{results['when']}.json").write_text(json.dumps(results, indent=2, ensure_ascii=False))
    lines = [f"# {header(results)}"]
    for title, headers, rows in sections:
        lines += ["", f"## {title}", "", "| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
    (out / "latest.md").write_text("\n".join(lines) + "\n")
    console.print(f"written to {out / 'latest.md'} and {out / (results['when'] + '.json')}")
