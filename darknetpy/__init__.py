"""darknetpy: pjreddie's Darknet in Python, bit for bit.

    net = darknetpy.load("cfg/yolov2.cfg", "weights/yolov2.weights")
    outputs = net.forward(net.load_input("data/dog.jpg"))
"""
from .errors import CfgError, DarknetError, DataError, ImageError, WeightsError
from .network import NUMERICS, Network
from .train import Trainer

__version__ = "0.1.0"


def load(cfg: str, weights: str | None = None, numerics: str = "darknet", compat: str | None = None,
         device: str = "cpu") -> Network:
    """Build the network of a Darknet .cfg and load its .weights (numerics, compat and
    device ("cpu" or "cuda:N"): see Network)."""
    return Network(cfg, weights, numerics=numerics, compat=compat, device=device)


__all__ = ["load", "Network", "Trainer", "NUMERICS", "DarknetError", "CfgError", "WeightsError", "ImageError", "DataError"]
