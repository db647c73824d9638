"""``python -m nas_student.cli``."""

import sys

from nas_student.cli import main

sys.exit(main())
