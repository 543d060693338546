"""`python -m ops` (what `./ops/dev` runs)."""

from ops.cli import main

raise SystemExit(main())
