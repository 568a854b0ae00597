"""`python -m xpool.cli`: the same as the `xpool` console script."""

from xpool.cli.main import main

main()
