"""What benchmarks/peers.py prints: the table of figures and each goal against its figure."""

from __future__ import annotations

from benchmarks.peer_catalog import US, Peer

#: Statements an empty run of ours sends, by database (pinned by test_store.py's
#: test_empty_run_costs_three_statements_and_a_reading_of_the_database_clock):
#: PostgreSQL and MariaDB also read the database's clock.
EMPTY_RUN_STATEMENTS = {"sqlite": 3, "postgresql": 4, "mariadb": 4}


def best(
    figures: dict[str, dict[str, float]], key: str, *, lowest: bool = False
) -> tuple[str, float]:
    """Return the peer (not us) with the best `key`, and its figure."""
    candidates = [
        (name, row[key]) for name, row in figures.items() if not name.startswith(US) and key in row
    ]
    if not candidates:
        return ("none", float("nan"))
    return (min if lowest else max)(candidates, key=lambda pair: pair[1])


def verdict(met: bool) -> str:
    return "met" if met else "NOT MET"


def report(
    figures: dict[str, dict[str, float]], catalog: dict[str, Peer], limit: float, vendor: str
) -> list[str]:
    """Return the table and the goals, one line each."""
    header = [
        "runner",
        "enqueue/s",
        "drain/s",
        "% of limit",
        "CPU us/task",
        "empty run ms",
        "notes",
    ]
    rows = [header]
    for name, row in figures.items():
        rows.append(
            [
                name,
                f"{row['enqueue/s']:,.0f}",
                f"{row['drain/s']:,.0f}",
                f"{100 * row['drain/s'] / limit:.0f}%",
                f"{row['drain CPU us/task']:.0f}" if "drain CPU us/task" in row else "n/a",
                f"{row['empty run ms']:.0f}" if "empty run ms" in row else "n/a",
                catalog[name].notes,
            ]
        )
    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    ]
    ours = figures[US]
    share = ours["drain/s"] / limit
    lines += [
        "",
        f"drain >= 80% of the durable-commit limit ({limit:,.0f}/s): {100 * share:.0f}%, "
        f"{verdict(share >= 0.8)}",
        f"empty run within 5% of django.setup() + a connection + {EMPTY_RUN_STATEMENTS[vendor]} "
        f"statements ({ours['floor ms']:.0f} ms): {ours['empty run ms'] / ours['floor ms']:.2f}x, "
        f"{verdict(ours['empty run ms'] <= 1.05 * ours['floor ms'])}",
    ]
    if any(not name.startswith(US) for name in figures):
        drain_peer, drain_best = best(figures, "drain/s")
        enqueue_peer, enqueue_best = best(figures, "enqueue/s")
        empty_peer, empty_best = best(figures, "empty run ms", lowest=True)
        lines += [
            f"drain >= 3x the best peer ({drain_peer}, {drain_best:,.0f}/s): "
            f"{ours['drain/s'] / drain_best:.2f}x, {verdict(ours['drain/s'] >= 3 * drain_best)}",
            f"empty run no slower than the quickest peer's ({empty_peer}, {empty_best:.0f} ms): "
            f"{ours['empty run ms']:.0f} ms, {verdict(ours['empty run ms'] <= empty_best)}",
            f"enqueue >= 1.5x the best peer ({enqueue_peer}, {enqueue_best:,.0f}/s): "
            f"{ours['enqueue/s'] / enqueue_best:.2f}x, "
            f"{verdict(ours['enqueue/s'] >= 1.5 * enqueue_best)}",
        ]
    for name, row in figures.items():
        if name.startswith(f"{US}@"):
            ratio = ours["drain/s"] / row["drain/s"]
            cpu = ours["drain CPU us/task"] / row["drain CPU us/task"]
            lines.append(
                f"drain within 5% of {name}'s ({row['drain/s']:,.0f}/s) or faster: "
                f"{100 * ratio:.0f}%, {verdict(ratio >= 0.95)}; CPU per task "
                f"{100 * cpu:.0f}% of its {row['drain CPU us/task']:.0f} us"
            )
    return lines
