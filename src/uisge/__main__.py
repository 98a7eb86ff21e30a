"""`python -m uisge`: the same entry point as the `uisge` command. Nothing else lives here."""

from uisge.cli import main

raise SystemExit(main())
