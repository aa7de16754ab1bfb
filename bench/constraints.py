"""Print the installed versions of explorer[test]'s whole dependency closure, as a pip constraints file.

    python bench/constraints.py > constraints.txt      # after the tests passed with these versions

CI installs with ``pip install -c constraints.txt -e ".[test]"``, so a new upstream release cannot
change what CI tests without a commit here. Local version labels (``2.13.0+cpu``) are dropped:
``torch==2.13.0`` admits the CPU and the CUDA builds alike.
"""

import re
from importlib import metadata

from packaging.requirements import Requirement

HEADER = """# Versions the test suite was last run with (CI installs with -c constraints.txt; pyproject.toml keeps
# the ranges). Update: in a fresh virtual environment, pip install torch==2.13.0, then
# pip install -U -e ".[test]", run the README's test command, and regenerate this file with
# python bench/constraints.py > constraints.txt (the dependency closure of explorer[test])."""


def closure(name: str, extras=(), seen=None) -> dict:
    """{normalised name: version} of ``name`` and everything it requires (with ``extras``), installed."""
    seen = {} if seen is None else seen
    key = re.sub(r"[-_.]+", "-", name).lower()
    try:
        dist = metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return seen
    if key in seen and not extras:
        return seen
    seen[key] = dist.version
    for text in dist.requires or []:
        req = Requirement(text)
        if req.marker is None or any(req.marker.evaluate({"extra": e}) for e in (list(extras) or [""])):
            closure(req.name, tuple(req.extras), seen)
    return seen


if __name__ == "__main__":
    print(HEADER)
    for key, version in sorted(closure("explorer", ("test",)).items()):
        if key != "explorer":
            print(f"{key}=={version.split('+')[0]}")
