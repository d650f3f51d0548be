"""Evaluation: metrics of the baseline, every round and the chosen round, as files,
plots and Prefect artifacts."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
from prefect import task  # noqa: E402
from prefect.artifacts import create_table_artifact  # noqa: E402
from prefect.cache_policies import NONE  # noqa: E402

from tasks.mask import PreparedData  # noqa: E402

ROUND_COLUMNS = ("round", "n_labeled", "n_pseudo_labeled", "n_added", "mean_confidence",
                 "val_accuracy", "test_accuracy", "test_macro_f1", "pseudo_label_accuracy")
# The UI's rounds table: short headers and 3 decimals, so it reads on a 1400 px page.
ARTIFACT_HEADERS = dict(zip(ROUND_COLUMNS, ("round", "labeled", "pseudo", "added", "confidence",
                                            "val acc", "test acc", "test F1", "pseudo acc"),
                            strict=True))


@task(name="evaluate", cache_policy=NONE)
def evaluate_rounds(records: list[dict], chosen: int, verdict: dict, data: PreparedData,
                    reports_dir: str, metrics_dir: str) -> dict:
    """Report every round on test, the round the driver chose, the base estimator chosen
    by evidence and the guard's verdict."""
    base, best = records[0], records[chosen]
    check = verdict.get("cv_check") or {}
    metrics = {
        "base_estimator": verdict["base_estimator"],
        "guard": ("not run" if not check else
                  "kept the labeled-only model" if check["fallback"] else
                  "scikit-learn's plain self-training adopted"
                  if check.get("selection") == "plain" else "self-training adopted"),
        "guard_selection": check.get("selection"),  # "configured", "plain" or None (kept)
        "guard_helped_rows": check.get("helped_rows"),
        "guard_harmed_rows": check.get("harmed_rows"),
        "guard_z_help": check.get("z_help"),
        "estimator_cv_accuracy": (verdict.get("estimator_choice") or {}).get("cv_accuracy"),
        "test_accuracy": best["test_accuracy"],
        "test_macro_f1": best["test_macro_f1"],
        "baseline_accuracy": base["test_accuracy"],
        "baseline_macro_f1": base["test_macro_f1"],
        "chosen_round": best["round"],
        "n_rounds": len(records),
        "n_pseudo_labeled": best["n_pseudo_labeled"],
        "pseudo_label_accuracy": best["pseudo_label_accuracy"],
        "val_accuracy": best["val_accuracy"],
        "per_class_recall": best["test_report"]["per_class_recall"],
        "confusion_matrix": best["test_report"]["confusion_matrix"],
        "baseline_confusion_matrix": base["test_report"]["confusion_matrix"],
        "classes": data.schema.classes,
        "mode": data.mode,
        "data_fingerprint": data.fingerprint,
        "n_train": data.n_train,
        "n_labeled": data.n_labeled,
        "n_test": data.n_test,
    }
    metrics_path = Path(metrics_dir)
    metrics_path.mkdir(parents=True, exist_ok=True)
    write_rounds_csv(records, metrics_path / "rounds.csv")
    reports = Path(reports_dir)
    reports.mkdir(parents=True, exist_ok=True)
    plot_rounds(records, chosen, reports / "rounds.png")
    plot_confusion(best["test_report"]["confusion_matrix"], data.schema.classes,
                   reports / "confusion_matrix.png")
    create_table_artifact(
        key="self-training-rounds",
        table=artifact_rows(records),
        description=f"Rounds of run {data.key}; chosen round {best['round']}",
    )
    return metrics


def artifact_rows(records: list[dict]) -> list[dict]:
    return [{ARTIFACT_HEADERS[c]: _rounded(r.get(c)) for c in ROUND_COLUMNS} for r in records]


def _rounded(value):
    return round(value, 3) if isinstance(value, float) else value


def write_metrics(metrics: dict, metrics_dir: str) -> Path:
    """``metrics.json`` without the bulky per-class arrays DVC cannot compare."""
    path = Path(metrics_dir) / "metrics.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(metrics, indent=2, default=str))
    tmp.replace(path)
    return path


def write_rounds_csv(records: list[dict], path: Path) -> None:
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=ROUND_COLUMNS)
        writer.writeheader()
        for r in records:
            writer.writerow({c: r.get(c) for c in ROUND_COLUMNS})


def plot_rounds(records: list[dict], chosen: int, path: Path) -> None:
    """Accuracy (validation, test) and pseudo-label count by round, chosen round marked."""
    rounds = [r["round"] for r in records]
    fig, ax = plt.subplots(figsize=(7, 4.4), layout="constrained")
    for key, label in (("val_accuracy", "validation accuracy"), ("test_accuracy", "test accuracy"),
                       ("pseudo_label_accuracy", "pseudo-label accuracy")):
        values = [r.get(key) for r in records]
        if any(v is not None for v in values):
            ax.plot(rounds, [float("nan") if v is None else v for v in values], marker="o",
                    label=label)
    ax.axvline(records[chosen]["round"], color="grey", linestyle="--", label="chosen round")
    ax.set_xlabel("round")
    ax.set_ylabel("accuracy")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # rounds are whole numbers
    ax2 = ax.twinx()
    ax2.bar(rounds, [r["n_pseudo_labeled"] for r in records], alpha=0.2, color="tab:purple")
    ax2.set_ylabel("pseudo-labeled rows (bars)")
    ax.set_zorder(ax2.get_zorder() + 1)  # lines over the bars
    ax.patch.set_visible(False)
    fig.legend(loc="outside lower center", ncols=4, fontsize=8)  # below the plot, not on it
    ax.set_title("Self-training by round")
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_confusion(matrix: list[list[int]], classes: list, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(5.6, 5))
    image = ax.imshow(matrix, cmap="Blues")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="test rows")
    ax.set_xticks(range(len(classes)), [str(c) for c in classes])
    ax.set_yticks(range(len(classes)), [str(c) for c in classes])
    top = max(max(row) for row in matrix) or 1
    for i, row in enumerate(matrix):
        for j, value in enumerate(row):  # white on the dark cells, to stay readable
            ax.text(j, i, str(value), ha="center", va="center", fontsize=8,
                    color="white" if value > top / 2 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("Confusion matrix (test, chosen round)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
