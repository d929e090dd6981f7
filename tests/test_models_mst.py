"""The Masked Spiking Transformer model definition (examples/snn_models/mst.py) and its export."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

from snn_models.mst import (  # noqa: E402
    MaskedSpikingTransformer,
    RandomSpikeMask,
    count_qcfs,
    expected_qcfs,
    export_onnx,
    window_partition,
    window_reverse,
)

# Op types that a real MST export may contain (MST.md, plus what torch.onnx emits for it).
ALLOWED_OPS = {
    "Constant", "Identity", "Mul", "Div", "Add", "Sub", "Reshape", "Transpose", "Floor", "Clip",
    "MatMul", "Slice", "Gather", "Shape", "ConstantOfShape", "RandomUniformLike", "Greater",
    "Cast", "Concat", "BatchNormalization", "Softmax", "Conv", "LayerNormalization",
    "GlobalAveragePool", "ReduceMean", "Flatten", "Gemm", "Unsqueeze", "Squeeze", "Expand",
    "Where", "Equal",
}
RANDOM_OPS = {"RandomUniformLike", "Greater", "Cast"}


def tiny(**kwargs) -> MaskedSpikingTransformer:
    """4x4 tokens, windows of 2x2: block 0 plain, block 1 shifted by 1."""
    config = dict(
        img_size=16, patch_size=4, in_chans=1, num_classes=10, embed_dim=16, depths=(2,),
        num_heads=(2,), window_size=2, mlp_ratio=2.0, levels=8,
    )
    config.update(kwargs)
    torch.manual_seed(0)
    return MaskedSpikingTransformer(**config)


@pytest.fixture(scope="module")
def masked_export(tmp_path_factory):
    path = tmp_path_factory.mktemp("mst") / "masked.onnx"
    model = tiny(attn_mask_ratio=0.5, mlp_mask_ratio=0.25)
    ops = export_onnx(model, path, 16, 1)
    return model, ops, onnx.load(str(path)).graph, path


@pytest.fixture(scope="module")
def plain_export(tmp_path_factory):
    path = tmp_path_factory.mktemp("mst") / "plain.onnx"
    model = tiny()
    ops = export_onnx(model, path, 16, 1)
    return model, ops, onnx.load(str(path)).graph, path


def producers(graph) -> dict[str, onnx.NodeProto]:
    return {out: node for node in graph.node for out in node.output}


@pytest.mark.parametrize("norm2_on_skip", [True, False])
def test_tiny_forward_shape(norm2_on_skip):
    model = tiny(norm2_on_skip=norm2_on_skip)
    x = torch.rand(3, 1, 16, 16)
    assert model(x).shape == (3, 10)  # train mode
    model.eval()
    with torch.no_grad():
        assert model(x).shape == (3, 10)


def test_two_stage_forward_and_shift():
    model = tiny(embed_dim=8, depths=(2, 2), num_heads=(1, 2), img_size=32).eval()
    blocks = [b for stage in model.stages for b in stage if hasattr(b, "shift")]
    # stage 0: 8x8 tokens, window 2 -> shifted on block 1; stage 1: 4x4 tokens -> also shifted
    assert [b.shift for b in blocks] == [0, 1, 0, 1]
    with torch.no_grad():
        assert model(torch.rand(2, 1, 32, 32)).shape == (2, 10)


def test_window_larger_than_grid_disables_shift():
    model = tiny(window_size=4)  # 4x4 tokens, window 4: one window, nothing to shift
    assert all(b.shift == 0 and b.shift_mask is None for b in model.stages[0])


def test_swin_t_parameter_count():
    model = MaskedSpikingTransformer()  # Swin-T: 224, patch 4, 96, 2-2-6-2, 3-6-12-24, window 7
    params = sum(p.numel() for p in model.parameters())
    assert 27_000_000 <= params <= 30_000_000
    assert count_qcfs(model) == expected_qcfs((2, 2, 6, 2)) == 1 + 3 + 10 * 12


def test_qcfs_count_matches_architecture(plain_export):
    model, _, graph, _ = plain_export
    # patch embed 1 + per block: BN1 input, q, k, v, attn, attn@v, proj, BN2 input, fc1, fc2
    assert count_qcfs(model) == 1 + 2 * 10 == expected_qcfs((2,))
    assert Counter(n.op_type for n in graph.node)["Floor"] == count_qcfs(model)
    two_stage = tiny(embed_dim=8, depths=(2, 4), num_heads=(1, 2), img_size=32)
    assert count_qcfs(two_stage) == 1 + 1 + 10 * 6  # + one patch merging


def test_masked_export_ops(masked_export):
    _, ops, graph, _ = masked_export
    assert ops == sorted(set(ops))
    assert set(ops) <= ALLOWED_OPS, set(ops) - ALLOWED_OPS
    for op in ("RandomUniformLike", "Greater", "Cast", "Softmax", "LayerNormalization", "MatMul"):
        assert op in ops
    # 4 masks per block (q, k, attn, fc1 output) x 2 blocks
    assert Counter(n.op_type for n in graph.node)["RandomUniformLike"] == 8


def test_rsm_exports_as_random_greater_cast_mul(masked_export):
    _, _, graph, _ = masked_export
    made_by = producers(graph)
    chains = 0
    for node in graph.node:
        if node.op_type != "Mul":
            continue
        for name in node.input:
            cast = made_by.get(name)
            if cast is None or cast.op_type != "Cast":
                continue
            greater = made_by[cast.input[0]]
            assert greater.op_type == "Greater"
            assert made_by[greater.input[0]].op_type == "RandomUniformLike"
            chains += 1
    assert chains == 8


def test_roll_exports_as_slice_concat(masked_export):
    _, _, graph, _ = masked_export
    made_by = producers(graph)
    rolls = [
        n for n in graph.node
        if n.op_type == "Concat" and len(n.input) == 2
        and all(made_by.get(i) is not None and made_by[i].op_type == "Slice" for i in n.input)
    ]
    assert len(rolls) == 4  # shift forward and back, each over rows and columns


def test_token_batchnorm_exports_as_batchnorm_on_channels(plain_export):
    _, _, graph, _ = plain_export
    made_by = producers(graph)
    token_bns = [
        made_by[n.input[0]].op_type
        for n in graph.node
        if n.op_type == "BatchNormalization" and made_by[n.input[0]].op_type != "Conv"
    ]
    # BN1 and BN2 of both blocks. Their input is a Transpose of [B, N, C] to [B, C, N], except
    # the first block's BN1: the exporter cancels its Transpose against the one that made the
    # patch embedding's tokens, so it normalises the Reshape [B, C, N] of the conv output.
    assert sorted(token_bns) == ["Reshape", "Transpose", "Transpose", "Transpose"]


def test_unmasked_export_has_no_random_ops(plain_export):
    _, ops, _, _ = plain_export
    assert not RANDOM_OPS & set(ops)
    assert set(ops) <= ALLOWED_OPS
    assert "Shape" not in ops  # shape arithmetic is static


def test_onnxruntime_matches_torch(plain_export):
    ort = pytest.importorskip("onnxruntime")
    model, _, _, path = plain_export
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).random((1, 1, 16, 16), dtype=np.float32)
    with torch.no_grad():
        reference = model(torch.from_numpy(x)).numpy()
    assert np.abs(session.run(["logits"], {"image": x})[0] - reference).max() < 1e-4


def test_masked_export_runs_in_onnxruntime(masked_export):
    ort = pytest.importorskip("onnxruntime")
    _, _, _, path = masked_export
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out = session.run(["logits"], {"image": np.zeros((1, 1, 16, 16), np.float32)})[0]
    assert out.shape == (1, 10) and np.isfinite(out).all()


def test_rsm_active_in_eval_and_keeps_no_scale():
    mask = RandomSpikeMask(0.75).eval()
    torch.manual_seed(0)
    x = torch.ones(100_000)
    y = mask(x)
    assert set(y.unique().tolist()) <= {0.0, 1.0}  # spikes kept as they are, not rescaled
    assert abs(y.mean().item() - 0.25) < 0.01
    assert RandomSpikeMask(0.0)(x) is x
    with pytest.raises(ValueError):
        RandomSpikeMask(1.0)


def test_masks_are_drawn_in_eval():
    model = tiny(attn_mask_ratio=0.75).eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim == 0:
                p.fill_(0.05)  # low QCFS thresholds: plenty of q spikes for the mask to drop
    attention = model.stages[0][0].attn
    seen = []
    attention.q_mask.register_forward_hook(lambda _m, i, o: seen.append((i[0].clone(), o.clone())))
    x = torch.rand(1, 1, 16, 16)
    with torch.no_grad():
        for seed in (1, 2, 1):
            torch.manual_seed(seed)
            model(x)
    (q, a), (_, b), (_, c) = seen
    assert (q > 0).sum() > 10
    kept = (a > 0).sum().item() / (q > 0).sum().item()
    assert 0.0 < kept < 0.6
    assert not torch.equal(a, b)  # a fresh mask each call
    assert torch.equal(a, c)  # drawn from torch's generator


def test_shift_mask_and_windows():
    block = tiny().stages[0][1]
    assert block.shift == 1
    assert set(block.shift_mask.unique().tolist()) == {0.0, -100.0}
    assert block.shift_mask.shape == (1, 4, 1, 4, 4)  # 4 windows of 2x2 tokens
    x = torch.rand(2, 4, 4, 3)
    assert torch.equal(window_reverse(window_partition(x, 2, 4, 4), 2, 4, 4), x)
