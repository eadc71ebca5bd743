"""``python -m pluralrm`` is the ``pluralrm`` command."""

from pluralrm.cli import app

if __name__ == "__main__":
    app()
