"""``python -m pymc_dlm``."""

from .cli import main

raise SystemExit(main())
