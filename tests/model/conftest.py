"""Behaviour tests on trained models: what a fitted classifier must do, whatever its
exact numbers. Each module trains its model once (a module-scoped fixture)."""

import pytest
from threadpoolctl import threadpool_limits


@pytest.fixture(autouse=True, scope="session")
def one_thread_per_process():
    """BLAS/OpenMP threads fight over 2 shared cores: small fits run ~5x faster on one."""
    with threadpool_limits(1):
        yield
