"""One module per Darknet layer type; LAYER_TYPES maps a cfg section type to its class."""
from .avgpool import Avgpool
from .convolutional import Convolutional
from .cost import Cost
from .dropout import Dropout
from .maxpool import Maxpool
from .region import Region
from .reorg import Reorg
from .route import Route
from .shortcut import Shortcut
from .softmax import Softmax
from .upsample import Upsample
from .yolo import Yolo

LAYER_TYPES = {cls.type: cls for cls in (Convolutional, Maxpool, Avgpool, Route, Reorg, Region, Softmax,
                                         Cost, Dropout, Shortcut, Upsample, Yolo)}
