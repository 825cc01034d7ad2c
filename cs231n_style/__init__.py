"""cs231n-style: helpers for the neural style transfer course (Gatys et al., CVPR 2016)."""

from .device import *  # noqa: F401,F403
from .features import *  # noqa: F401,F403
from .images import *  # noqa: F401,F403
from .transfer import *  # noqa: F401,F403
