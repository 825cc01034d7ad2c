"""cs231n-style: the helpers of a neural style transfer course (Gatys et al., CVPR 2016).

Everything students need that is not the lesson: device setup, images, pretrained SqueezeNet 1.1
feature maps, the optimization loop, checks and plots. The losses themselves are the students'.
One module per concept; everything public is re-exported here, so ``import cs231n_style as cs``
and ``cs.load_image(...)``, ``cs.check_gram_matrix(...)``, ... are all a notebook needs.
"""

from .checks import *  # noqa: F401,F403
from .device import *  # noqa: F401,F403
from .features import *  # noqa: F401,F403
from .images import *  # noqa: F401,F403
from .notebook import *  # noqa: F401,F403
from .plots import *  # noqa: F401,F403
from .transfer import *  # noqa: F401,F403
from .widgets import *  # noqa: F401,F403

__version__ = "0.1.0"
