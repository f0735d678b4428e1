"""Capture stage: run the model and record what it executed (DESIGN §1)."""
from .run import CAPTURE_METHODS, capture

__all__ = ["CAPTURE_METHODS", "capture"]
