"""scikit-learn's own tests of ``SelfTrainingClassifier``, run against ours.

The test file of the *installed* scikit-learn is read at test time, its import of the
class is swapped for ``from selftrain import SelfTrainingClassifier``, and the result runs
in a pytest subprocess: a scikit-learn upgrade brings its new tests with it. If the import
line is not found the test fails instead of quietly testing scikit-learn against itself,
and a test appended to the module checks that the class it runs is this project's.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import sklearn.semi_supervised

import selftrain

SKLEARN_TESTS = Path(sklearn.semi_supervised.__file__).parent / "tests" / "test_self_training.py"
SKLEARN_IMPORT = "from sklearn.semi_supervised import SelfTrainingClassifier\n"
OUR_IMPORT = "from selftrain import SelfTrainingClassifier\n"
PROJECT_ROOT = Path(selftrain.__file__).resolve().parent.parent
GUARD = '''

def test_the_class_under_test_is_selftrains():
    import selftrain.estimator

    assert SelfTrainingClassifier is selftrain.estimator.SelfTrainingClassifier
    assert selftrain.estimator.__file__.startswith({root!r}), selftrain.estimator.__file__
'''


def swapped_source(source: str) -> str:
    """scikit-learn's test module importing selftrain's class instead of its own."""
    assert source.count(SKLEARN_IMPORT) == 1, (
        f"{SKLEARN_TESTS} no longer has the line {SKLEARN_IMPORT.strip()!r} exactly once: "
        "update SKLEARN_IMPORT so that the suite tests selftrain's class"
    )
    swapped = source.replace(SKLEARN_IMPORT, OUR_IMPORT)
    assert "import SelfTrainingClassifier" not in swapped.replace(OUR_IMPORT, "")
    return swapped + GUARD.format(root=str(PROJECT_ROOT))


def test_swap_refuses_a_file_without_the_import_line():
    with pytest.raises(AssertionError, match="no longer has the line"):
        swapped_source("from sklearn.semi_supervised import SelfTrainingClassifier as STC\n")


def test_swap_imports_selftrain_and_adds_the_guard():
    swapped = swapped_source(SKLEARN_TESTS.read_text())
    assert OUR_IMPORT in swapped
    assert "def test_the_class_under_test_is_selftrains" in swapped


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_sklearn_self_training_suite_passes_against_selftrain(tmp_path):
    module = tmp_path / "test_sklearn_self_training.py"
    module.write_text(swapped_source(SKLEARN_TESTS.read_text()))
    # not this project's settings; scikit-learn's own marker, unknown outside its conftest
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers =\n    thread_unsafe\n")
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider", "-rfE",
         "-c", str(tmp_path / "pytest.ini"), str(module)],
        cwd=tmp_path, capture_output=True, text=True, timeout=850,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
    )
    out = run.stdout + run.stderr
    assert run.returncode == 0, f"scikit-learn's suite failed against selftrain:\n{out[-8000:]}"
    assert "::test_the_class_under_test_is_selftrains PASSED" in out, out[-8000:]
    assert int(re.search(r"(\d+) passed", out).group(1)) > 1, out[-2000:]
