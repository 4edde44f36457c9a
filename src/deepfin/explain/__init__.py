"""Explanations: attributions of model outputs to their inputs."""
