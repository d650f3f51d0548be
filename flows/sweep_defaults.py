"""The sweep's defaults, in a module light enough for the command line to import at once
(``flows/sweep.py`` pulls in Dask)."""

DEFAULT_WORKERS = 2
# Small by default: 4 candidates. Never mutated (they are the flow's parameter defaults).
DEFAULT_GRID = {"base_estimators": ["random_forest", "logistic_regression"],
                "thresholds": [0.8, 0.95], "labeled_fractions": [0.1]}
