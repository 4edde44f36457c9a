"""Run folders: their format and how to open one of any task."""
