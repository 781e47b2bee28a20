"""optisite: siting cabinets secondaires and centres de santé for GP access in France."""

__version__ = "0.1.0"

from .errors import CheckError, InfeasibleError, InputError, OptisiteError  # noqa: E402
from .instance import Instance, instance_from_frames, load_instance  # noqa: E402
from .parameters import Parameters  # noqa: E402

__all__ = [
    "CheckError", "InfeasibleError", "InputError", "OptisiteError",
    "Instance", "instance_from_frames", "load_instance", "Parameters", "__version__",
]
