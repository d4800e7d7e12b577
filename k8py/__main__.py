import sys

from k8py.cli.main import main

sys.exit(main())
