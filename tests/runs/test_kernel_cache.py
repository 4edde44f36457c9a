"""The compiled kernels' library is checked against the sha256 recorded when it was built."""

from __future__ import annotations

import logging

from deepfin.models.kernels.fused_rnn import library_intact
from deepfin.runs.atomic import record_sha256, recorded_sha256_matches


def _library(tmp_path):
    library = tmp_path / "deepfin_recurrent_0123.so"
    library.write_bytes(b"\x7fELF built here")
    (tmp_path / "recurrent.o").write_bytes(b"object")
    return library


def test_the_library_built_here_passes(tmp_path):
    library = _library(tmp_path)
    record_sha256(library)
    assert recorded_sha256_matches(library) is True
    assert library_intact(library) and library.exists()


def test_a_changed_library_is_removed_with_its_objects_and_a_warning(tmp_path, caplog):
    library = _library(tmp_path)
    record_sha256(library)
    library.write_bytes(b"\x7fELF swapped in")
    assert recorded_sha256_matches(library) is False
    with caplog.at_level(logging.WARNING, logger="deepfin.models.kernels.fused_rnn"):
        assert not library_intact(library)
    assert "sha256" in caplog.text and "rebuilding" in caplog.text
    assert not library.exists() and not (tmp_path / "recurrent.o").exists()


def test_a_library_built_before_checksums_is_recorded_as_found(tmp_path):
    library = _library(tmp_path)
    assert recorded_sha256_matches(library) is None
    assert library_intact(library)
    assert recorded_sha256_matches(library) is True
