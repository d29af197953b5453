"""``python -m ganaug`` runs the CLI (also under ``torchrun``)."""

from ganaug.cli import main

if __name__ == "__main__":
    main()
