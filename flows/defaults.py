"""Defaults of the deployment and the sweep, in a module light enough for the command line
to import at once: ``flows/deploy.py`` imports Prefect, which must not load before
``selftrain deploy`` has set the server's credentials, and ``flows/sweep.py`` pulls in Dask."""

DEPLOYMENT_NAME = "nightly"
NIGHTLY_CRON = "0 2 * * *"
TIMEZONE = "UTC"

DEFAULT_WORKERS = 2
# Small by default: 4 candidates. Never mutated (they are the flow's parameter defaults).
DEFAULT_GRID = {"base_estimators": ["random_forest", "logistic_regression"],
                "thresholds": [0.8, 0.95], "labeled_fractions": [0.1]}
