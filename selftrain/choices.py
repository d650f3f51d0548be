"""The allowed values of the settings that take one of a few names: one home, read by the
config model (as its ``Literal`` types) and by the estimator's argument checks."""

CRITERIA = ("threshold", "k_best")
CALIBRATIONS = ("sigmoid", "isotonic")
TEACHERS = ("label_spreading",)
STOPPING = ("holdout", "cv")


def described(values: tuple, optional: bool = False) -> str:
    """``None, 'a' or 'b'``: the allowed values as an error message lists them."""
    names = (["None"] if optional else []) + [repr(v) for v in values]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
