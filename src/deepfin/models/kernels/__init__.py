"""Fused CPU kernels for the recurrent layers (C++ under csrc/)."""
