"""``python -m validation``: the one entry point of the project's Python side."""

from validation.cli import main

raise SystemExit(main())
