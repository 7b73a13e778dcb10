"""The pass manager: fixed point, gate, rollback, checker failures, interface metadata, op deltas."""

from __future__ import annotations

import pytest

from onnxmend.core.errors import OnnxmendError
from onnxmend.passes.infra.catalogue import all_passes, resolve
from onnxmend.passes.infra.presets import PRESETS


def test_catalogue_presets_name_known_passes_and_unknown_names_are_errors():
    known = all_passes()
    for preset, names in PRESETS.items():
        assert set(names) <= set(known), preset
    assert [p.name for p in resolve(None, "fold-constants,remove-identity")] == ["fold-constants", "remove-identity"]
    with pytest.raises(OnnxmendError, match="Unknown pass nope"):
        resolve(None, "nope")
    with pytest.raises(OnnxmendError, match="Unknown preset"):
        resolve("fast")
