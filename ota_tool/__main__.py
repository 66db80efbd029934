"""`python -m ota_tool`: the same as `ota`."""

from .cli import main

main()
