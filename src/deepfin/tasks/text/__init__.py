"""The text task: sentiment and intents of financial text."""
