"""``python -m nbroutes``: the ``nbroutes`` command."""

from __future__ import annotations

import sys

from nbroutes.cli import main

sys.exit(main())
