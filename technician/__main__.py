"""`python -m technician`: the same as the `fieldpost` command."""

import sys

from technician.cli import main

sys.exit(main())
