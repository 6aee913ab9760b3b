"""``python -m ltbounds`` runs the command line."""

from ltbounds.cli import run

if __name__ == "__main__":
    run()
