"""A LightGBM model text checked before LightGBM parses it.

LightGBM's C++ parser trusts its input: a truncated file makes it read past the buffer
(segfault) and a split on a feature that does not exist, or a child index out of range, makes
prediction read out of bounds or loop. This checks what those reads rely on, in the layout
LightGBM itself uses: the header, each tree where `tree_sizes` says it is, every tree's arrays
(lengths from num_leaves, feature indices below max_feature_idx + 1, children forming one
tree), and the sections that end the file. deepfin writes numerical splits only (no
categorical or linear trees), so anything else is refused too.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from deepfin.errors import RunFolderError
from deepfin.runs.files import required_artifact

BOOSTER = "model.lgb.txt"  # LightGBM's own text format: readable, and loading runs no code
VERSIONS = ("v3", "v4")
# arrays per internal node (num_leaves - 1) and per leaf; None: not required
NODE_ARRAYS = {
    "split_feature": True,
    "threshold": True,
    "left_child": True,
    "right_child": True,
    "split_gain": False,
    "decision_type": False,
    "internal_value": False,
    "internal_weight": False,
    "internal_count": False,
}
LEAF_ARRAYS = {"leaf_value": True, "leaf_weight": False, "leaf_count": False}
TREE_KEYS = {"num_leaves", "num_cat", "is_linear", "shrinkage", *NODE_ARRAYS, *LEAF_ARRAYS}
# numerical splits: bit 0 (categorical) clear; bit 1 default-left; bits 2-3 missing type 0-2
DECISION_TYPES = {missing << 2 | left << 1 for missing in range(3) for left in range(2)}
PARAMETER_LINE = re.compile(r"\[[A-Za-z0-9_]+: [^\[\]]*\]")
# integers as C's strtol reads them, and nothing Python alone accepts ("1_0", "²")
INTEGER = re.compile(r"-?[0-9]{1,18}")
INTEGER_ARRAYS = ("split_feature", "left_child", "right_child", "decision_type")


class _Invalid(Exception):
    """What is wrong with the text; turned into a RunFolderError naming the file."""


def read_booster_text(run_dir: Path, hashes: dict[str, str] | None, *, n_features: int) -> str:
    """The trees' text of a run folder, checked before LightGBM's parser sees it."""
    path = run_dir / BOOSTER
    try:
        text = required_artifact(run_dir, BOOSTER, hashes).decode("utf-8")
    except UnicodeDecodeError:
        raise RunFolderError(f"{path} is not text; re-run or restore it") from None
    # LightGBM's C++ parser trusts its input: a truncated or crafted file can crash it
    check_booster_text(text, n_features=n_features, path=path)
    return text


def check_booster_text(text: str, *, n_features: int, path: Path) -> None:
    """Raise RunFolderError unless `text` is a LightGBM model deepfin wrote for `n_features`."""
    try:
        _check(text, n_features)
    except _Invalid as error:
        raise RunFolderError(
            f"{path} is not a LightGBM model deepfin can load ({error}); it is truncated or "
            "was altered; re-run or restore it"
        ) from None


def _check(text: str, n_features: int) -> None:
    if "\0" in text or "\r" in text:
        raise _Invalid("it holds NUL or carriage-return characters")
    if not text.startswith("tree\n"):
        raise _Invalid("it does not begin with 'tree'")
    first = text.find("\nTree=")
    if first < 0:
        raise _Invalid("it holds no tree")
    header = _pairs(text[: first + 1].splitlines()[1:], "the header")
    sizes = _header(header, n_features)
    start = offset = first + 1  # where LightGBM's tree offsets count from
    for index, size in enumerate(sizes):
        if offset + size > len(text):
            raise _Invalid(f"tree {index} runs past the end of the file (truncated)")
        _tree(text[offset : offset + size], index, n_features)
        offset += size
    if offset != start + sum(sizes):  # pragma: no cover - arithmetic guard
        raise _Invalid("tree sizes do not add up")
    _tail(text[offset:])


def _pairs(lines: list[str], where: str) -> dict[str, str]:
    """key=value lines, each key once."""
    pairs: dict[str, str] = {}
    for line in lines:
        if not line:
            continue
        key, equals, value = line.partition("=")
        if not equals or not key or key in pairs:
            raise _Invalid(f"{where} has a malformed or repeated line {line[:60]!r}")
        pairs[key] = value
    return pairs


def _header(header: dict[str, str], n_features: int) -> list[int]:
    """The checked header's tree sizes."""
    if header.get("version") not in VERSIONS:
        raise _Invalid(f"version {header.get('version')!r}, not one of {VERSIONS}")
    for key in ("num_class", "num_tree_per_iteration"):
        if header.get(key) != "1":
            raise _Invalid(f"{key}={header.get(key)!r}; deepfin writes binary models (1)")
    if header.get("max_feature_idx") != str(n_features - 1):
        raise _Invalid(
            f"max_feature_idx={header.get('max_feature_idx')!r}, not {n_features - 1} for "
            f"the {n_features} features config.json names"
        )
    listed = {"feature_names": "", "feature_infos": "", "monotone_constraints": None}
    for key, absent in listed.items():
        value = header.get(key, absent)
        if value is not None and len(value.split(" ")) != n_features:
            raise _Invalid(f"{key} does not list {n_features} features")
    sizes = _numbers(header.get("tree_sizes", ""), "tree_sizes", True)
    if not sizes or min(sizes) < 1:
        raise _Invalid("tree_sizes is missing or not positive")
    return [int(size) for size in sizes]


def _tree(block: str, index: int, n_features: int) -> None:
    """One tree's text, as LightGBM reads it: 'Tree=i', key=value lines, a blank line."""
    title, _, body = block.partition("\n")
    if title != f"Tree={index}":
        raise _Invalid(f"tree {index} is not where tree_sizes puts it (found {title[:30]!r})")
    lines, blank, rest = body.partition("\n\n")
    if not blank or rest.strip("\n"):
        raise _Invalid(f"tree {index} does not end with a blank line where its size says")
    tree = _pairs(lines.split("\n"), f"tree {index}")
    if set(tree) - TREE_KEYS:
        raise _Invalid(f"tree {index} has unknown field(s) {sorted(set(tree) - TREE_KEYS)}")
    leaves = _count(tree, "num_leaves", index)
    if leaves < 1:
        raise _Invalid(f"tree {index}: num_leaves={leaves}")
    if _count(tree, "num_cat", index) != 0 or tree.get("is_linear", "0") != "0":
        raise _Invalid(f"tree {index} has categorical or linear splits, which deepfin never grows")
    arrays = {}
    for name, required in {**NODE_ARRAYS, **LEAF_ARRAYS}.items():
        length = leaves if name in LEAF_ARRAYS else leaves - 1
        values = _numbers(tree.get(name, ""), f"tree {index} {name}", name in INTEGER_ARRAYS)
        if len(values) != length and (required or values) and length > 0:
            raise _Invalid(f"tree {index}: {name} has {len(values)} values, not {length}")
        if length == 0 and values and name in NODE_ARRAYS:
            raise _Invalid(f"tree {index}: a one-leaf tree with {name} values")
        arrays[name] = values
    if any(not 0 <= feature < n_features for feature in arrays["split_feature"]):
        raise _Invalid(f"tree {index} splits on a feature outside 0..{n_features - 1}")
    if any(kind not in DECISION_TYPES for kind in arrays["decision_type"]):
        raise _Invalid(f"tree {index} has a decision_type deepfin never writes")
    _children(arrays["left_child"], arrays["right_child"], leaves, index)


def _children(left: list[float], right: list[float], leaves: int, index: int) -> None:
    """Every node and leaf reached exactly once from the root: a tree, no loop, in range."""
    if leaves == 1:
        return
    seen_nodes, seen_leaves, stack = {0}, set(), [0]
    while stack:
        node = stack.pop()
        for child in (int(left[node]), int(right[node])):
            if child >= 0:
                if child >= leaves - 1 or child in seen_nodes:
                    raise _Invalid(f"tree {index}: node {node} has a bad child {child}")
                seen_nodes.add(child)
                stack.append(child)
            elif ~child >= leaves or ~child in seen_leaves:
                raise _Invalid(f"tree {index}: node {node} has a bad leaf {child}")
            else:
                seen_leaves.add(~child)
    if len(seen_nodes) != leaves - 1 or len(seen_leaves) != leaves:
        raise _Invalid(f"tree {index}: some nodes or leaves are unreachable")


def _tail(tail: str) -> None:
    """What follows the trees: 'end of trees', importances, parameters, pandas_categorical."""
    lines = tail.split("\n")
    if tail.lstrip("\n").split("\n", 1)[0] != "end of trees":
        raise _Invalid("'end of trees' does not follow the last tree (truncated?)")
    if "parameters:" in lines:
        begin = lines.index("parameters:")
        if "end of parameters" not in lines[begin:]:
            raise _Invalid("the parameters section does not end (truncated?)")
        end = lines.index("end of parameters", begin)
        if not all(not line or PARAMETER_LINE.fullmatch(line) for line in lines[begin + 1 : end]):
            raise _Invalid("the parameters section has a malformed line")
    last = [line for line in lines if line][-1]
    key, _, value = last.partition(":")
    if key != "pandas_categorical" or not tail.endswith("\n") or not _is_json(value):
        raise _Invalid("the file does not end with its 'pandas_categorical' line (truncated?)")


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _count(tree: dict[str, str], key: str, index: int) -> int:
    value = tree.get(key, "")
    if not INTEGER.fullmatch(value) or value.startswith("-"):
        raise _Invalid(f"tree {index}: {key}={value[:30]!r} is not a count")
    return int(value)


def _numbers(text: str, what: str, integers: bool) -> list[float]:
    """Space-separated numbers (integers only, if asked); empty text is no numbers."""
    if not text:
        return []
    values = text.split(" ")
    if integers:
        if not all(INTEGER.fullmatch(value) for value in values):
            raise _Invalid(f"{what} holds something that is not an integer")
        return [int(value) for value in values]
    try:
        return [float(value) for value in values]
    except ValueError:
        raise _Invalid(f"{what} holds something that is not a number") from None
