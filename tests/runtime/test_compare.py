import numpy as np
import pytest

from onnxmend.runtime.compare import Comparator, Tolerance


def test_identical_outputs_pass_with_zero_needed_tolerance():
    ref = np.random.default_rng(0).standard_normal((2, 10)).astype(np.float32)
    result = Comparator().compare_arrays("y", ref, ref.copy())
    assert result.verdict == "pass"
    assert result.max_abs == 0.0 and result.needed_atol == 0.0 and result.needed_rtol == 0.0
    assert result.cosine == pytest.approx(1.0)


def test_small_difference_within_atol_scaled_by_output_magnitude():
    ref = np.array([100.0, -50.0, 3.0])
    act = ref + np.array([5e-3, 0.0, 0.0])  # 5e-3 ≤ 1e-4 × 100 + 1e-3 × 100
    result = Comparator().compare_arrays("y", ref, act)
    assert result.verdict == "pass"
    assert result.scale == 100.0
    assert result.max_abs_scaled == pytest.approx(5e-5)


def test_mismatch_reports_the_tolerance_that_would_have_passed():
    ref = np.array([1.0, 2.0, 3.0])
    act = np.array([1.0, 2.0, 3.5])
    result = Comparator(Tolerance(1e-4, 0.0)).compare_arrays("y", ref, act)
    assert result.verdict == "mismatch"
    assert result.needed_atol == pytest.approx(0.5 / 3.0)  # atol is relative to scale = max|ref| = 3
    assert result.needed_rtol == pytest.approx((0.5 - 1e-4 * 3.0) / 3.0)
    assert "exceeds" in result.reason
    rerun = Comparator(Tolerance(result.needed_atol + 1e-12, 0.0)).compare_arrays("y", ref, act)
    assert rerun.verdict == "pass"


@pytest.mark.parametrize("ref", [np.full(10, 1e-11), np.full(10, 3.0), np.zeros((2, 2))])
def test_near_zero_or_constant_reference_is_degenerate_not_pass(ref):
    result = Comparator().compare_arrays("y", ref, ref.copy())
    assert result.verdict == "degenerate"
    assert "near" in result.reason


def test_non_finite_actual_is_a_mismatch():
    ref = np.array([1.0, 2.0])
    result = Comparator().compare_arrays("y", ref, np.array([1.0, np.nan]))
    assert result.verdict == "mismatch"


def test_shape_mismatch_is_reported():
    result = Comparator().compare_arrays("y", np.ones((2, 3)), np.ones((4,)))
    assert result.verdict == "mismatch" and "shape" in result.reason


def test_outputs_pair_by_name_then_by_order():
    ref = {"a": np.arange(4.0), "b": np.arange(3.0)}
    same_names = Comparator().compare(ref, {"b": np.arange(3.0), "a": np.arange(4.0)})
    assert same_names.verdict == "pass"
    renamed = Comparator().compare(ref, {"out0": np.arange(4.0), "out1": np.arange(3.0) + 1})
    assert [o.verdict for o in renamed.outputs] == ["pass", "mismatch"]
    assert renamed.verdict == "mismatch"
    with pytest.raises(ValueError, match="cannot be paired"):
        Comparator().compare(ref, {"x": np.arange(4.0)})


def test_cosine_of_scaled_output_is_one_but_values_mismatch():
    ref = np.linspace(-1, 1, 50)
    result = Comparator().compare_arrays("y", ref, ref * 2)
    assert result.cosine == pytest.approx(1.0)
    assert result.verdict == "mismatch"


def test_quantized_outputs_are_judged_in_steps_per_output():
    from onnxmend.runtime.compare import QuantizationSteps

    rng = np.random.default_rng(0)
    ref = rng.integers(-100, 100, size=(1, 1000)).astype(np.int8)
    one_off = ref.astype(np.int16)
    one_off[0, :10] += 1
    two_off = ref.astype(np.int16)
    two_off[0, 3] -= 2
    floats = rng.standard_normal((1, 4)).astype(np.float32)
    comparator = Comparator(Tolerance(1e-4, 1e-3), per_output={"q": QuantizationSteps(1.0)})
    passed = comparator.compare({"q": ref, "f": floats}, {"q": one_off, "f": floats})
    assert passed.passed
    q = passed.outputs[0]
    assert (q.max_abs, q.max_abs_scaled, q.extra["steps"], q.atol) == (1.0, 1.0, 1.0, 1.0)
    failed = comparator.compare({"q": ref, "f": floats}, {"q": two_off, "f": floats})
    assert failed.verdict == "mismatch"
    assert failed.failures == ["q: max abs diff 2 is 2 quantization steps of 1 (allowed 1)"]
    # The same one-step difference under the float tolerance fails: the criterion is what lets it pass.
    assert not Comparator(Tolerance(1e-4, 1e-3)).compare({"q": ref}, {"q": one_off}).passed
    scaled = Comparator(per_output={"q": QuantizationSteps(0.05)}).compare({"q": ref * 0.05}, {"q": one_off * 0.05})
    assert scaled.passed and scaled.outputs[0].extra["steps"] == pytest.approx(1.0)


def test_a_constant_quantized_reference_is_degenerate():
    from onnxmend.runtime.compare import QuantizationSteps

    ref = np.full((1, 10), 3, np.int8)
    result = Comparator(per_output={"q": QuantizationSteps(1.0)}).compare({"q": ref}, {"q": ref})
    assert result.verdict == "degenerate"
