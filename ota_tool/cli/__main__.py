"""`python -m ota_tool.cli`: the same as `ota`."""

from . import main

main()
