"""`python -m darknetpy`: the same command as `darknetpy`."""
import sys

from .cli import main

sys.exit(main())
