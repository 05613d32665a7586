"""autolabel-gui: review Grounding DINO proposals and save verified Pascal VOC boxes."""

__version__ = "0.1.0"
