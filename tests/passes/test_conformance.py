"""The conformance run in small: a fixed set of ONNX backend node tests (``bench/conformance.py`` runs all
of them), every preset with and without the gate, on the case as generated, with a dynamic batch, and with
its parameters as constants. Every output must match (bitwise or within the dtype tolerance), no pass may
crash or break a graph, every dynamic dim must survive, and outputs must stay right at two other batch sizes."""

from __future__ import annotations

import pytest

from bench.conformance import CONST, collect_cases, run_corpus, summarize

CASES = (
    # padding and pools: auto_pad resolved, asymmetric pads split for portable
    "conv_with_autopad_same", "conv_with_strides_and_asymmetric_padding", "conv_with_strides_padding",
    "convtranspose_autopad_same", "averagepool_2d_same_upper", "averagepool_2d_pads", "maxpool_2d_same_lower",
    "lppool_2d_same_upper", "globalaveragepool", "reflect_pad", "edge_pad", "wrap_pad",
    # norms: fused ops (decomposed by portable when their parameters are constants) and expanded bodies
    "layer_normalization_2d_axis0", "layer_normalization_4d_axis1_expanded", "group_normalization_epsilon",
    "group_normalization_example_expanded", "instancenorm_example", "instancenorm_epsilon", "batchnorm_epsilon",
    "mvn_expanded",
    # layout, reductions, matmuls
    "transpose_all_permutations_0", "reduce_mean_keepdims_example", "reduce_sum_negative_axes_keepdims_example",
    "reduce_max_do_not_keepdims_example", "gemm_all_attributes", "matmul_4d", "reshape_negative_dim",
    "slice_neg_steps", "split_equal_parts_1d_opset18", "unsqueeze_axis_0",
    # elementwise and cleanup
    "add_bcast", "div", "relu", "where_example", "gelu_tanh_1_expanded", "identity", "dropout_default", "constant",
    "softmax_axis_1_expanded", "resize_upsample_scales_nearest",
    # shape reads folded by fold-constants
    "shape_start_1", "shape_end_negative_1", "rotary_embedding_3d_input_expanded",
    # control flow
    "if", "loop11", "scan9_sum",
    # once pass crashes of the full run: a constant If flattened with a folded branch value (fold-constants),
    # onnx's data propagation refusing a valid broadcast (fold-shape-chains), allowzero before opset 14
    "affine_grid_2d_expanded", "attention_local_window_expanded", "sce_none_expanded",
)
PRESETS = ("fix", "portable")


@pytest.fixture(scope="module")
def summary() -> dict:
    cases, left_out = collect_cases("^test_(" + "|".join(CASES) + ")$")
    assert sorted(c["name"] for c in cases) == sorted(f"test_{n}" for n in CASES) and not left_out
    results = run_corpus(cases, PRESETS, jobs=2)
    return {"summary": summarize(results, PRESETS, left_out), "results": {r["name"]: r for r in results}}


def test_every_case_runs_on_onnxruntime_and_has_its_variants(summary) -> None:
    s = summary["summary"]
    assert s["harness_failures"] == {} and s["ort_runnable"] == len(CASES)
    assert s["batch_variants"] >= 35 and s["constant_variants"] >= 25


@pytest.mark.parametrize("key", [f"{p}/{m}{v}" for v in ("", CONST) for p in PRESETS for m in ("gated", "ungated")])
def test_no_mismatch_no_crash_dims_kept_batches_right(summary, key) -> None:
    counts, failures = summary["summary"]["per_config"][key], summary["summary"]["failures"][key]
    assert failures == []
    assert counts["mismatch"] == counts["pass_crashes"] == counts["batch_mismatch"] == 0
    assert counts["bitwise"] + counts["tolerance"] == counts["cases"]
    assert counts["dims_preserved"] == counts["dims_checked"] > counts["cases"]
    assert counts["batch_ok"] == counts["batch_checked"] > 0


@pytest.mark.parametrize("case, key, passes", [
    ("conv_with_autopad_same", "fix/gated", {"resolve-auto-pad"}),
    ("maxpool_2d_same_lower", "portable/gated", {"resolve-auto-pad", "split-asymmetric-pads"}),
    ("shape_start_1", "fix/gated", {"fold-constants"}),
    ("rotary_embedding_3d_input_expanded", "fix/ungated", {"fold-constants", "remove-identity"}),
    ("instancenorm_example", f"portable/gated{CONST}", {"decompose-norms"}),
    ("batchnorm_epsilon", f"fix/gated{CONST}", {"fold-batch-norm"}),
    ("affine_grid_2d_expanded", "fix/gated", {"fold-constants"}),
    ("attention_local_window_expanded", "fix/gated", {"fold-constants", "fold-shape-chains"}),
])
def test_the_passes_do_rewrite_these_cases(summary, case, key, passes) -> None:
    # A conformance run where nothing is rewritten would prove nothing.
    assert passes <= set(summary["results"][f"test_{case}"][key]["applied"])
