import sys

from qbconsole.cli import main

sys.exit(main())
