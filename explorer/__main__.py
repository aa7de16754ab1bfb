"""`python -m explorer ...` is the same as the `explorer` console script."""

from explorer.cli import main

raise SystemExit(main())
