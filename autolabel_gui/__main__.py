"""``python -m autolabel_gui``."""

import sys

from autolabel_gui.cli import main

sys.exit(main())
