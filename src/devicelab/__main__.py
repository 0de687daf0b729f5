import sys

from devicelab.cli import main

sys.exit(main())
