"""The sweep's report: candidates side by side (table artifact, plot, JSON) and the choice
of the best one, on validation accuracy only."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from prefect import task  # noqa: E402
from prefect.artifacts import create_table_artifact  # noqa: E402
from prefect.cache_policies import NONE  # noqa: E402

COLUMNS = ("name", "base_estimator", "threshold", "labeled_fraction", "n_labeled",
           "val_accuracy", "test_accuracy", "baseline_accuracy", "chosen_round", "n_rounds",
           "n_pseudo_labeled", "pseudo_label_accuracy", "seconds", "error")


def pick_best(rows: list[dict]) -> dict:
    """The finished candidate with the highest validation accuracy; ties go to the first in
    grid order. Test accuracy is never looked at: it stays an honest estimate."""
    finished = [r for r in rows if not r.get("error")
                and r["metrics"].get("val_accuracy") is not None]
    if not finished:
        errors = "; ".join(f"{r['name']}: {r.get('error') or 'no validation score'}" for r in rows)
        raise RuntimeError(f"sweep: no candidate finished with a validation score ({errors})")
    return max(finished, key=lambda r: (r["metrics"]["val_accuracy"], -rows.index(r)))


def flat_rows(rows: list[dict]) -> list[dict]:
    """One flat record per candidate, in ``COLUMNS`` order (metrics inlined)."""
    return [{c: (r.get("metrics") or {}).get(c, r.get(c)) for c in COLUMNS} for r in rows]


@task(name="report-sweep", cache_policy=NONE)
def report_sweep(rows: list[dict], summary: dict, reports_dir: str, metrics_dir: str) -> dict:
    """``reports/sweep.png``, ``metrics/sweep.json`` and the ``sweep-candidates`` artifact."""
    table = flat_rows(rows)
    for record in table:
        record["best"] = record["name"] == summary["best"]
    reports, metrics = Path(reports_dir), Path(metrics_dir)
    reports.mkdir(parents=True, exist_ok=True)
    metrics.mkdir(parents=True, exist_ok=True)
    plot_candidates(table, reports / "sweep.png")
    verdict = "promoted" if summary["promoted"] else "not promoted (gate)"
    payload = {"candidates": table, **{k: v for k, v in summary.items() if k != "candidates"}}
    (metrics / "sweep.json").write_text(json.dumps(payload, indent=2, default=str) + "\n")
    create_table_artifact(
        key="sweep-candidates", table=table,
        description=f"{len(table)} candidates; best by validation: {summary['best']} "
                    f"({verdict} -> {summary['destination']})",
    )
    return {"plot": str(reports / "sweep.png"), "json": str(metrics / "sweep.json")}


def plot_candidates(table: list[dict], path: Path) -> None:
    """Validation and test accuracy per candidate, labeled-only baseline as a tick."""
    names = [r["name"] for r in table]
    nan = float("nan")
    values = {k: [nan if r[k] is None else r[k] for r in table]
              for k in ("val_accuracy", "test_accuracy", "baseline_accuracy")}
    xs = range(len(names))
    fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(names) + 2), 4.5))
    ax.bar([x - 0.2 for x in xs], values["val_accuracy"], 0.4, label="validation (chooses)")
    ax.bar([x + 0.2 for x in xs], values["test_accuracy"], 0.4, label="test")
    ax.scatter(xs, values["baseline_accuracy"], marker="_", s=400, color="black",
               label="labeled-only baseline (test)", zorder=3)
    for x, record in zip(xs, table, strict=True):
        if record["best"]:
            ax.annotate("best", (x - 0.2, values["val_accuracy"][x]), ha="center",
                        va="bottom", fontsize=8, fontweight="bold")
    finite = [v for vs in values.values() for v in vs if v == v]
    ax.set_ylim(max(0.0, min(finite, default=0.0) - 0.05), 1.05)
    ax.set_xticks(list(xs), names, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("accuracy")
    ax.set_title("Sweep: candidates side by side", pad=28)
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, fontsize=8, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
