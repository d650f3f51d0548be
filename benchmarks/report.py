"""How the accuracy benchmark shows its result: a rich table, the bars, README markdown."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

LABELS = {
    "baseline": "labeled-only RF",
    "sklearn_st": "sklearn SelfTraining (RF)",
    "label_spreading": "sklearn LabelSpreading",
    "recommended": "selftrain recommended",
    "oracle": "fully supervised RF",
    "ours_holdout": "selftrain + holdout stopping",
    "ours_unguarded": "selftrain, no CV guard",
    "baseline_logreg": "labeled-only logreg",
    "sklearn_st_logreg": "sklearn SelfTraining (logreg)",
    "ours_logreg": "selftrain recommended (logreg)",
}
README_ROWS = ("baseline", "sklearn_st", "label_spreading", "recommended", "oracle")


def print_table(console: Console, result: dict) -> None:
    """One row per dataset x fraction x method."""
    table = Table(title="Accuracy on a fixed 25% test split (mean ± std over seeds)")
    for col, justify in [("dataset", "left"), ("labeled", "right"), ("method", "left"),
                         ("accuracy", "right"), ("macro-F1", "right"), ("gap closed", "right"),
                         ("fit s", "right")]:
        table.add_column(col, justify=justify)
    for cell in result["cells"]:
        label = f"{cell['fraction']:.0%} ({cell['n_labeled']:g})"
        for i, (method, stats) in enumerate(cell["methods"].items()):
            style = "bold" if method == "recommended" else None
            table.add_row(
                cell["dataset"] if i == 0 else "", label if i == 0 else "",
                LABELS.get(method, method), _pm(stats, "accuracy"), _pm(stats, "macro_f1"),
                f"{stats['gap_closed']:+.0%}", f"{stats['fit_seconds_median']:.2f}",
                style=style, end_section=i == len(cell["methods"]) - 1,
            )
    console.print(table)
    for cell in result["cells"]:
        for method, error in cell.get("failed_methods", {}).items():
            console.print(f"{cell['dataset']} {cell['fraction']:.0%}: {method} refused: {error}")


def print_bars(console: Console, bars: dict) -> None:
    """One PASS/FAIL line per bar of the issue."""
    for name, bar in bars.items():
        word = {True: "[green]PASS[/]", False: "[red]FAIL[/]", None: "[yellow]N/A[/]"}
        detail = bar.get("failing_cells") or ""
        if "best_peer" in bar:
            detail = (f"recommended {bar['recommended']:.3f} vs best peer {bar['best_peer']:.3f}, "
                      f"gap closed {bar['gap_closed']:.0%}")
        console.print(f"{word[bar['passed']]}  {name}  {detail}")


def format_markdown(result: dict) -> str:
    """Accuracy (mean ± std) of the README rows, and the gap the recommended row closes."""
    head = ["dataset", "labeled", *(LABELS[m] for m in README_ROWS), "gap closed", "ok"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for cell in result["cells"]:
        stats = cell["methods"]
        best = max(stats[m]["accuracy_mean"] for m in README_ROWS if m != "oracle")
        row = [cell["dataset"], f"{cell['fraction']:.0%} ({cell['n_labeled']:g})"]
        for method in README_ROWS:
            text = _pm(stats[method], "accuracy")
            is_best = method != "oracle" and stats[method]["accuracy_mean"] == best
            row.append(f"**{text}**" if is_best else text)
        row.append(f"{stats['recommended']['gap_closed']:+.0%}")
        row.append("✓" if all(cell["verdict"].values()) else "✗")
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    for name, bar in result["bars"].items():
        word = {True: "PASS", False: "FAIL", None: "N/A"}[bar["passed"]]
        lines.append(f"- {word}: {name}")
    return "\n".join(lines) + "\n"


def write_markdown(result: dict, path: Path) -> None:
    path.write_text(format_markdown(result))


def _pm(stats: dict, metric: str) -> str:
    return f"{stats[metric + '_mean']:.3f} ± {stats[metric + '_std']:.3f}"
