import sys

from selfplay.cli import main

sys.exit(main())
