"""Optional integrations with training frameworks.

Each submodule imports its framework itself, so ``import mevreport`` never
needs them: ``from mevreport.integrations.lightning import MevreportCallback``
is the only line that requires Lightning.
"""
