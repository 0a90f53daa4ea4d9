"""darknetpy: pjreddie's Darknet in Python, bit for bit.

    net = darknetpy.load("cfg/yolov2.cfg", "weights/yolov2.weights")
    outputs = net.forward(net.load_input("data/dog.jpg"))
"""
from .errors import (CfgError, CfgNotFoundError, DarknetError, DataError, DataNotFoundError, ImageError,
                     ImageNotFoundError, WeightsError, WeightsNotFoundError)
from .network import NUMERICS, Network
from .train import Trainer

__version__ = "0.1.0"


def load(cfg: str, weights: str | None = None, numerics: str = "darknet", compat: str | None = None,
         device: str = "cpu", names=None, allow_extra_weights: bool = False) -> Network:
    """Build the network of a Darknet .cfg and load its .weights. Without weights the
    parameters are zero (batch norm scales one): the network runs, but it is untrained
    and its outputs mean nothing. numerics, compat, device ("cpu" or "cuda:N"), names
    (a list or a names file) and allow_extra_weights: see Network."""
    return Network(cfg, weights, numerics=numerics, compat=compat, device=device, names=names,
                   allow_extra_weights=allow_extra_weights)


__all__ = ["load", "Network", "Trainer", "NUMERICS", "DarknetError", "CfgError", "WeightsError", "ImageError",
           "DataError", "CfgNotFoundError", "WeightsNotFoundError", "ImageNotFoundError", "DataNotFoundError"]
