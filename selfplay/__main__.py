import sys

from selfplay.tools.cli import main

sys.exit(main())
