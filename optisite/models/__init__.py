"""The models: one module each, registered by name (see ``base.py`` for the protocol).

Importing this package registers every model; ``names()`` lists them and ``get(name)``
returns one. A new model is a new module here and one import line below.
"""

from .base import Context, Decisions, Finish, Model, Objective, ResultMeaning, get, names, register
from . import coverage, staffing, apl, lscp, phasing  # noqa: E402,F401  (registration order = CLI order)

__all__ = ["Context", "Decisions", "Finish", "Model", "Objective", "ResultMeaning", "get", "names", "register"]
