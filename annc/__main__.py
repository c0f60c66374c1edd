import sys

from annc.cli import main

sys.exit(main())
