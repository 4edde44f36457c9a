"""Command-line options derived from the config dataclasses: a field is a flag, declared once.

`config_options(("training", TrainingConfig), ...)` adds one option per field of each section
to a command and hands the command the values given, as `flags` ({"section.field": value}),
the overrides `load_config` takes. A flag is `--field-name` unless `SPELLED` says otherwise;
a tuple field takes a comma-separated list (or the option repeated), a dict field takes
key=value pairs.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import typing
from collections.abc import Callable, Iterable
from typing import Annotated, Any

import typer

from deepfin.cli.common import fail, pairs
from deepfin.errors import ConfigError
from deepfin.tasks.forecasting.compare import ModelSpec, model_spec

# fields whose flag reads better than its name; a "--yes/--no" pair names both spellings
SPELLED = {
    "data.source": "--data",
    "data.columns": "--column",
    "forecast.model_params": "--param",
    "credit.model_params": "--param",
    "text.model_params": "--param",
    "chart.model_params": "--param",
    "image.model_params": "--param",
    "credit.drop": "--drop-column",
    "credit.allow_columns": "--allow-column",
    "privacy.enabled": "--dp/--no-dp",
    "privacy.epsilon": "--dp-epsilon",
    "privacy.delta": "--dp-delta",
    "privacy.max_grad_norm": "--dp-max-grad-norm",
    "walk_forward.warm_start": "--warm-start/--cold-start",
}
ALSO = {"var.levels": ("--level",)}  # second spellings a user may reach for first
HELP = {
    "data.source": "Built-in data set name or CSV/Parquet path.",
    "data.columns": "Column role=name, e.g. close='Adj Close'.",
    "data.tickers": "Tickers to keep.",
    "data.max_tickers": "Keep the first N tickers (0 keeps all).",
    "data.ffill_limit": "Longest gap of rows forward-filled per ticker.",
    "data.layout": "long, wide (a date column and one column of closes per ticker) or auto.",
    "split.embargo": "Days between parts (default: the horizon).",
    "forecast.model_params": "Model hyperparameter key=value.",
    "forecast.target": "log_return or price.",
    "forecast.scaler": "standard or minmax.",
    "forecast.loss": "mse, huber, ic (per-date correlation) or listnet (ranking).",
    "forecast.label_norm": "Per-date label normalisation: none, excess, zscore or rank.",
    "forecast.cross_section_norm": "Per-date input normalisation: none, zscore or rank.",
    "forecast.date_batches": "Batches of whole dates (all tickers of a day).",
    "forecast.max_abs_log_return": "One-day moves beyond this are flagged as bad data.",
    "training.optimizer": "adam or adamw.",
    "training.device": "auto, cpu or cuda.",
    "training.bf16": "bfloat16 autocast of the forward pass.",
    "training.grad_clip": "Max global gradient norm; 0 turns clipping off.",
    "training.patience": "Epochs without validation improvement before stopping; 0: never.",
    "walk_forward.refit_every": "Days per fold (21: monthly).",
    "walk_forward.window": "expanding or rolling.",
    "walk_forward.train_days": "Rolling window length.",
    "walk_forward.embargo": "Days between train, validation and test (default: the horizon).",
    "data.test_fraction": "Share of the rows held out as the test set.",
    "data.folds": "k-fold cross-validation on the training rows.",
    "data.cutoff": "Approve below this probability (default: KS-optimal on validation).",
    "credit.target": "Column that says default.",
    "credit.default_value": "Target value meaning default (needed unless 0/1).",
    "credit.date_col": "Split out of time by this date.",
    "credit.sensitive": "Not a feature; used for the fairness table.",
    "credit.baselines": "Baseline models ('' for none).",
    "credit.unknown_categories": "error or other.",
    "credit.model_params": "Model hyperparameter key=value.",
    "text.model_params": "Model hyperparameter key=value.",
    "text.start_from": "A text run of this model to start from (all but its head).",
    "privacy.enabled": "Train with DP-SGD.",
}

Section = tuple[str, type]


def config_options(
    *sections: Section, skip: Iterable[str] = (), help: dict[str, str] | None = None
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Give a command one option per field of `sections` (but `skip`, "section.field").

    The command takes `flags`: the overrides given on the command line, none when absent.
    `help` adds or replaces help texts for this command.
    """
    skipped = set(skip)
    texts = {**HELP, **(help or {})}
    fields = [
        (section, field, hint)
        for section, cls in sections
        for field in dataclasses.fields(cls)
        for hint in [typing.get_type_hints(cls)[field.name]]
        if f"{section}.{field.name}" not in skipped
    ]

    def decorate(command: Callable[..., None]) -> Callable[..., None]:
        own = list(inspect.signature(command, eval_str=True).parameters.values())
        names = {param.name for param in own}
        added = []  # (section.field, parameter name, field type, parameter)
        for section, field, hint in fields:
            if field.name in names:  # two sections, or the command, have this name
                raise TypeError(f"option {field.name} is declared twice on {command.__name__}")
            names.add(field.name)
            key = f"{section}.{field.name}"
            added.append((key, field.name, hint, _parameter(key, field.name, hint, texts)))

        @functools.wraps(command)
        def run(**given: Any) -> None:
            try:
                flags = {key: _convert(given.pop(name), hint, key) for key, name, hint, _ in added}
            except ConfigError as error:
                fail(error)
                return
            command(**given, flags=flags)

        before = [
            param.replace(kind=inspect.Parameter.KEYWORD_ONLY)
            for param in own
            if param.name != "flags"
        ]
        at = next((i + 1 for i, param in enumerate(before) if param.name == "config"), 0)
        parameters = [*before[:at], *(param for *_, param in added), *before[at:]]
        run.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
        return run

    return decorate


def _parameter(key: str, name: str, hint: Any, texts: dict[str, str]) -> inspect.Parameter:
    spelling = flag(key)
    kind = _base(hint)
    if kind is bool and "/" not in spelling:
        spelling = f"{spelling}/--no-{spelling[2:]}"
    if kind in (tuple, dict):
        annotation: Any = list[str] | None  # repeated, or a comma-separated list
    else:
        annotation = kind | None
    text = texts.get(key, "")
    if kind is tuple:
        text = f"{text} Comma-separated, or the option repeated.".strip()
    option = typer.Option(spelling, *ALSO.get(key, ()), help=text)
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Annotated[annotation, option]
    )


def flag(key: str) -> str:
    """The option of a config field, "section.field"; "--yes/--no" for a pair of spellings."""
    return SPELLED.get(key, "--" + key.split(".")[1].replace("_", "-"))


def _base(hint: Any) -> type:
    """int, float, str or bool for a scalar field (None allowed), tuple or dict for the rest."""
    args = [arg for arg in typing.get_args(hint) if arg is not type(None)]
    origin = typing.get_origin(hint)
    if origin in (tuple, dict):
        return origin
    if args and origin is not None:  # X | None
        return _base(args[0])
    if hint in (int, float, str, bool):
        return hint
    raise TypeError(f"no command-line option for a field of type {hint}")


def _convert(value: Any, hint: Any, key: str) -> Any:
    if value is None:
        return None
    kind = _base(hint)
    if kind is tuple:
        return tuple(item.strip() for text in value for item in text.split(",") if item.strip())
    if kind is dict:
        given = pairs(value, flag(key))
        if typing.get_args(hint)[1] is str:
            return given  # column names and the like stay text
        return {name: parse_value(text) for name, text in given.items()}
    return value


def parse_value(text: str) -> Any:
    """A value from the command line: int, float, bool or string."""
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def model_specs(text: str, option: str = "--models") -> list[ModelSpec]:
    """Comma-separated models, each `name` or a variant `name[key=value,...]`."""
    items, depth, current = [], 0, ""
    for char in text:  # commas inside brackets separate a variant's settings, not models
        depth += {"[": 1, "]": -1}.get(char, 0)
        if depth < 0 or depth > 1:
            raise ConfigError(f"{option} {text!r}: brackets do not pair up")
        if char == "," and depth == 0:
            items.append(current.strip())
            current = ""
        else:
            current += char
    items.append(current.strip())
    if depth:
        raise ConfigError(f"{option} {text!r}: a '[' is not closed")
    specs = []
    for item in filter(None, items):
        name, _, rest = item.partition("[")
        if rest and not rest.endswith("]"):
            raise ConfigError(f"{option}: write a variant as name[key=value,...]; got {item!r}")
        settings = pairs([p for p in rest[:-1].split(",") if p.strip()], f"{option} {name}")
        specs.append(model_spec(name.strip(), {k: parse_value(v) for k, v in settings.items()}))
    if not specs:
        raise ConfigError(f"{option} {text!r} names no model; give e.g. lstm,linear")
    return specs
