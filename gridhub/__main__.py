"""``python -m gridhub`` is the ``gridhub`` command."""

from gridhub.cli import main

main()
