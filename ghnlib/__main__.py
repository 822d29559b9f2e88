import sys

from ghnlib.cli import main

sys.exit(main())
