"""``python -m aeroloc.cli``: the same as the ``aeroloc`` script."""

from aeroloc.cli.main import main

main()
