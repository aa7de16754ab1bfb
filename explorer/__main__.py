"""`python -m explorer ...` is the same as the `explorer` console script."""

from explorer.cli import main

if __name__ == "__main__":  # not when a spawned worker process (Dask, multiprocessing) imports this module
    raise SystemExit(main())
