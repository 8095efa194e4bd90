"""Rotated text detection: rotated boxes, a rotated Faster R-CNN, the LS-IoU surrogate, ICDAR 2015 data."""
