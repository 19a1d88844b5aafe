#!/usr/bin/env python3
"""bench/table.py - turn the figures bench/run collected into the results table.

Input: lines "RUN KEY VALUE" (RUN numbers the repetition).  Each row is our
figure and its baseline, both measured in the same runs; the ratio is the
median of the per-run ratios (each run's figures were taken side by side),
the figures are medians with min-max.  --check exits 1 when a ratio misses
its target.
"""
import statistics
import sys
from collections import defaultdict

# (row, what, ours key, baseline key, baseline name, unit, target op, target)
# op '>=': ours/baseline must reach the target; '<=': must not exceed it;
# None: no target, the row is for reading.
ROWS = [
    ("1", "order (lock) rate, 1 thread", "order_t1_per_s", "raw_order_per_s",
     "raw SQLite txn, 1 thread", "/s", ">=", 0.8),
    ("1", "order rate, 16 threads, one market", "order_t16_per_s", "raw_order_per_s",
     "raw SQLite txn, 1 thread", "/s", ">=", 2.5),
    ("2", "flash sale: orders won/s (16 thr, 100 hot)", "flash_orders_per_s",
     "raw_flash_orders_per_s", "raw SQLite, 16 connections", "/s", None, None),
    ("2", "flash sale: attempts/s", "flash_attempts_per_s", "raw_flash_attempts_per_s",
     "raw SQLite, 16 connections", "/s", None, None),
    ("2", "flash sale: refusal share", "flash_refused_share", "raw_flash_refused_share",
     "raw (refused or busy)", "", None, None),
    ("2", "flash sale: p50 latency", "flash_p50_ms", "raw_flash_p50_ms",
     "raw SQLite", "ms", None, None),
    ("2", "flash sale: p99 latency", "flash_p99_ms", "raw_flash_p99_ms",
     "raw SQLite", "ms", None, None),
    ("2", "flash sale: double-live violations", "flash_violations", None,
     "must be 0", "", "==0", 0),
    ("3", "tick: expire 10k due, 100k live", "tick_100000_live_ms", "tick_10000_live_ms",
     "same tick, 10k live", "ms", None, None),
    ("3", "tick: expire 10k due, 1M live", "tick_1000000_live_ms", "tick_10000_live_ms",
     "same tick, 10k live", "ms", "<=", 1.5),
    ("4", "payment completion (fake provider)", "pay_per_s", "raw_pay_per_s",
     "raw SQLite, same 2 txns", "/s", None, None),
    ("5", "event replay via tb_event_read", "events_per_s", "raw_events_per_s",
     "raw SELECT paging", "/s", None, None),
    ("6", "GET /api/tickets/:id", "http_get_ticket_rps", "http_mhd_rps",
     "bare libmicrohttpd const", "req/s", ">=", 0.6),
    ("6", "GET /api/tickets/:id vs Node", "http_get_ticket_rps", "http_node_rps",
     "Node bare http const", "req/s", ">=", 1.2),
    ("6", "GET /api/tickets/:id, 1k hot tickets", "http_get_hot_rps", "http_mhd_rps",
     "bare libmicrohttpd const", "req/s", None, None),
    ("6", "GET /api/tickets (page of 50)", "http_list_rps", "http_mhd_rps",
     "bare libmicrohttpd const", "req/s", None, None),
    # The library's 16-thread rate measured again just before each POST run
    # (the same benchmark as row 1, on a fresh copy of its seed).
    ("6", "POST /api/orders (16 conns)", "http_post_orders_rps", "post_baseline_order_t16_per_s",
     "library, 16 threads, just before", "req/s", ">=", 0.75),
    # The other reading of "the library's own order rate": its
    # one-thread rate, as the raw handler it cites was held to the raw
    # single-transaction rate.  Printed for reading; the target stays on
    # the stricter row above.
    ("6", "POST /api/orders vs 1-thread rate", "http_post_orders_rps", "order_t1_per_s",
     "library, 1 thread (row 1)", "req/s", None, None),
    ("7", "server peak RSS, 1M tickets + 100k live", "server_vmhwm_mib", "mhd_vmhwm_mib",
     "bare libmicrohttpd", "MiB", None, None),
]


def fmt(v):
    if v is None:
        return "-"
    a = abs(v)
    if a >= 100:
        return f"{v:,.0f}"
    if a >= 10:
        return f"{v:.1f}"
    return f"{v:.3g}"


def span(values):
    if not values:
        return "n/a"
    med = statistics.median(values)
    if len(values) == 1:
        return fmt(med)
    return f"{fmt(med)} [{fmt(min(values))}-{fmt(max(values))}]"


def main(argv):
    check = "--check" in argv
    paths = [a for a in argv[1:] if not a.startswith("--")]
    by_run = defaultdict(dict)
    values = defaultdict(list)
    with open(paths[0]) as f:
        for line in f:
            parts = line.split()
            if len(parts) != 3:
                continue
            run, key, value = parts[0], parts[1], float(parts[2])
            by_run[run][key] = value
            values[key].append(value)

    header = ("row", "what", "ours: median [min-max]", "baseline: median [min-max]", "ratio",
              "target", "")
    out = []
    failed = []
    for num, what, ours, base, base_name, unit, op, target in ROWS:
        ov = values.get(ours, [])
        bv = values.get(base, []) if base else []
        ratios = [r[ours] / r[base] for r in by_run.values()
                  if base and ours in r and base in r and r[base] > 0]
        if base and not ratios and ov and bv:
            ratios = [statistics.median(ov) / statistics.median(bv)]
        ratio = statistics.median(ratios) if ratios else None
        mark = ""
        tgt = ""
        if op == "==0":
            tgt = "= 0"
            if ov:
                ok = max(ov) == 0
                mark = "PASS" if ok else "FAIL"
                if not ok:
                    failed.append(what)
            else:
                mark = "n/a"
        elif op:
            tgt = f"{op} {target}"
            if ratio is None:
                mark = "n/a"
            else:
                ok = ratio >= target if op == ">=" else ratio <= target
                mark = "PASS" if ok else "FAIL"
                if not ok:
                    failed.append(what)
        unit_s = f" {unit}" if unit else ""
        out.append((num, what, span(ov) + (unit_s if ov else ""),
                    (span(bv) + (unit_s if bv else "") + f" ({base_name})") if base else base_name,
                    f"{ratio:.2f}" if ratio is not None else "-", tgt, mark))

    widths = [max(len(str(r[i])) for r in out + [header]) for i in range(len(header))]
    print("| " + " | ".join(h.ljust(widths[i]) for i, h in enumerate(header)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in out:
        print("| " + " | ".join(str(c).ljust(widths[i]) for i, c in enumerate(r)) + " |")
    extra = sorted(k for k in values if k.startswith("note_"))
    for k in extra:
        print(f"{k[5:]}: {span(values[k])}")
    if failed:
        print(f"\n{len(failed)} row(s) below target: " + "; ".join(failed))
    if check and failed:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
