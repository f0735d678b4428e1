"""``python -m mevreport`` runs the command line."""
from .cli import entry

entry()
