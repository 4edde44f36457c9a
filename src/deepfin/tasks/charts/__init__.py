"""Convolutional nets on price charts, and image classification."""
