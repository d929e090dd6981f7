"""What MST exports written with plain PyTorch contain, compiled as exported: a classifier head
that pools tokens with AdaptiveAvgPool1d (a 3-D GlobalAveragePool), layer norm decomposed into
ReduceMean/Sub/Pow/Sqrt/Div below opset 17, ReduceMean's axes as an attribute or an input,
masks drawn by a plain function (several random draws in one module), and worst-case bounds no
input reaches. The models are written here; ANN numerics are checked against onnxruntime."""

from __future__ import annotations

import numpy as np
import onnx
import onnx.version_converter
import onnxruntime as ort
import pytest
import torch
from torch import nn

from neurocompile.backends.sim import Simulator
from neurocompile.cli.views import masks_table
from neurocompile.compiler import BuildOptions, build
from neurocompile.compiler.artifact import load_artifact
from neurocompile.frontend import onnx_to_ir
from neurocompile.ir.interpret import evaluate
from neurocompile.passes.failures import mask_groups
from neurocompile.passes.quantize import activation_error
from neurocompile.semantics.rng import failure_threshold, neuron_survivors, stream_id
from snn_models.qcfs import QCFS

TOKENS, WIDTH, CLASSES = 6, 8, 3


class TokenClassifier(nn.Module):
    """tokens [B, L, C] -> Linear -> QCFS -> LayerNorm -> mean over tokens -> Linear: the MST's
    last stage and head, pooled the way the Swin code does it."""

    def __init__(self, affine: bool = True):
        super().__init__()
        self.fc = nn.Linear(WIDTH, WIDTH)
        self.act = QCFS(levels=8, up=1.0)
        self.norm = nn.LayerNorm(WIDTH, elementwise_affine=affine)
        self.pool = nn.AdaptiveAvgPool1d(1)
        self.head = nn.Linear(WIDTH, CLASSES)

    def forward(self, x):
        y = self.norm(self.act(self.fc(x)))
        return self.head(self.pool(y.transpose(1, 2)).flatten(1))


def drop(x: torch.Tensor, ratio: float) -> torch.Tensor:
    """Random spike masking as a plain function: each call is its own draw."""
    return x * (torch.rand_like(x) > ratio).to(x.dtype)


class MaskedProjections(nn.Module):
    """Three spike tensors masked by the same function inside one module."""

    def __init__(self):
        super().__init__()
        self.q, self.k, self.v = (nn.Linear(WIDTH, WIDTH) for _ in range(3))
        self.q_act, self.k_act, self.v_act = (QCFS(levels=8, up=1.0) for _ in range(3))
        self.out = nn.Linear(3 * WIDTH, CLASSES)

    def forward(self, x):
        q = drop(self.q_act(self.q(x)), 0.5)
        k = drop(self.k_act(self.k(x)), 0.5)
        v = drop(self.v_act(self.v(x)), 0.5)
        return self.out(torch.cat([q, k, v], dim=-1)).mean(dim=1)


def export(model: nn.Module, path, opset: int):
    torch.manual_seed(0)
    for m in model.modules():  # weights away from the defaults, so that the norm's gamma and beta matter
        if isinstance(m, (nn.Linear, nn.LayerNorm)):
            for p in m.parameters():
                nn.init.normal_(p, 0.5 if p is getattr(m, "weight", None) else 0.0, 0.5)
    torch.onnx.export(model.eval(), torch.zeros(1, TOKENS, WIDTH), str(path), opset_version=opset, input_names=["x"], output_names=["y"])
    return path


@pytest.mark.parametrize("opset,affine", [(13, True), (13, False), (17, True), (18, True), (20, False)])
def test_token_pooling_and_layer_norm_compile_as_exported(tmp_path, opset, affine):
    path = export(TokenClassifier(affine), tmp_path / "m.onnx", 13 if opset > 17 else opset)
    if opset > 17:  # the decomposed norm with ReduceMean's axes as an input
        onnx.save(onnx.version_converter.convert_version(onnx.load(path), opset), path)
    graph = onnx.load(path).graph
    ops = {n.op_type for n in graph.node}
    assert "GlobalAveragePool" in ops and ("LayerNormalization" in ops) == (opset == 17)  # the shapes under test were exported
    assert all(len(n.input) == (2 if opset >= 18 else 1) for n in graph.node if n.op_type == "ReduceMean")
    net = onnx_to_ir(path)
    assert [p.op for p in net.populations() if p.kind == "host"] == ["layernorm"]
    x = np.random.default_rng(1).normal(0, 1, (5, TOKENS, WIDTH))
    session = ort.InferenceSession(str(path))
    ref = np.concatenate([session.run(None, {"x": x[i:i + 1].astype(np.float32)})[0] for i in range(5)])
    np.testing.assert_allclose(evaluate(net, x)["post"][net.readout.name], ref, rtol=1e-4, atol=1e-4)

    art = load_artifact(build(path, tmp_path / "m.ncx", BuildOptions())[0])
    out = Simulator(art.net, art.target.numerics).run(x, 48, readout_start=art.net.latency()).output
    assert np.mean(out.argmax(axis=1) == ref.argmax(axis=1)) >= 0.6  # the SNN tracks the ANN it was built from


def test_masks_drawn_independently_get_their_own_streams(tmp_path):
    net = onnx_to_ir(export(MaskedProjections(), tmp_path / "masked.onnx", 17))
    names = mask_groups(net)
    assert len(names) == 3 and len({stream_id(n) for n in names}) == 3, names
    assert masks_table(net).row_count == 3

    # Their drop patterns are independent: each drops half, any two drop together a quarter.
    steps, threshold = 400, failure_threshold(0.5)
    like = np.zeros((1, TOKENS * WIDTH))
    drops = {n: np.stack([neuron_survivors(0, stream_id(n), t, like, threshold) for t in range(steps)]) == 0 for n in names}
    trials = steps * TOKENS * WIDTH
    for i, a in enumerate(names):
        assert abs(drops[a].mean() - 0.5) < 5 * np.sqrt(0.25 / trials)
        for b in names[i + 1:]:
            assert not np.array_equal(drops[a], drops[b])
            assert abs((drops[a] & drops[b]).mean() - 0.25) < 5 * np.sqrt(0.25 * 0.75 / trials)


class WideFanIn(nn.Module):
    """4096 spikes of a high-threshold population into low-threshold neurons: every synapse at
    its largest input in one step is ~3e9 membrane units at the default scale, above 32 bits;
    no real input comes near (as in Swin-T's patch merging after BatchNorm)."""

    def __init__(self):
        super().__init__()
        self.a, self.act_a = nn.Linear(WIDTH, 4096), QCFS(levels=8, up=8.0)
        self.b, self.act_b = nn.Linear(4096, 4), QCFS(levels=8, up=0.05)
        self.head = nn.Linear(4, CLASSES)

    def forward(self, x):
        return self.head(self.act_b(self.b(self.act_a(self.a(x)))))


def test_a_worst_case_beyond_32_bits_coarsens_the_membrane_instead_of_refusing(tmp_path):
    torch.manual_seed(0)
    model = WideFanIn().eval()
    with torch.no_grad():
        model.b.weight.uniform_(0.0, 0.3)  # one sign: spikes can add every weight up
    path = tmp_path / "wide.onnx"
    torch.onnx.export(model, torch.zeros(1, WIDTH), str(path), opset_version=17)
    art = load_artifact(build(path, tmp_path / "wide.ncx", BuildOptions())[0])
    num = art.target.numerics
    wide = next(p for p in art.net.populations() if p.kind == "if" and abs(p.threshold - 0.05) < 1e-9)
    q = art.report["quantization"][wide.name]
    assert q["threshold_exp"] >= 1 and wide.threshold_int == num.threshold_units >> q["threshold_exp"]
    assert q["input_bound"] <= num.current_max and q["headroom_bits"] >= 0
    assert q["weight_rel_error"] < 0.01  # the block shifts absorbed the coarser scale
    x = np.random.default_rng(2).normal(0, 1, (64, WIDTH))
    # 0.0027, as with up = 0.5, which needs no coarser membrane: the scale costs nothing here.
    assert activation_error(art.net, x)[wide.name] < 0.01


@pytest.mark.parametrize("opset", [13, 17, 20])
def test_the_whole_mst_compiles_as_exported_at_every_opset(tmp_path, opset):
    # The project's MST with every mask site in the graph (ratio 0: onnxruntime draws them
    # unseeded), shifted windows, patch merging and the layer-norm head: below opset 17 torch
    # decomposes the head's norm, from 18 on the token mean's ReduceMean takes its axes as an
    # input.
    from snn_models.mst import MaskedSpikingTransformer, export_onnx

    torch.manual_seed(0)
    model = MaskedSpikingTransformer(img_size=8, patch_size=2, in_chans=1, num_classes=CLASSES, embed_dim=8, depths=(2, 2),
                                     num_heads=(1, 2), window_size=2, mlp_ratio=2.0, levels=4, mask_nodes=True)
    path = tmp_path / "mst.onnx"
    export_onnx(model, path, 8, 1, opset=min(opset, 17))
    if opset > 17:
        onnx.save(onnx.version_converter.convert_version(onnx.load(path), opset), path)
    ops = {n.op_type for n in onnx.load(path).graph.node}
    assert {"RandomUniformLike", "Softmax", "MatMul", "Slice", "Concat", "ReduceMean"} <= ops and ("LayerNormalization" in ops) == (opset >= 17)
    assert all(len(n.input) == (2 if opset >= 18 else 1) for n in onnx.load(path).graph.node if n.op_type == "ReduceMean")
    art = load_artifact(build(path, tmp_path / "mst.ncx", BuildOptions())[0])
    net = art.net
    assert len(mask_groups(net)) == 4 * 4  # q, k, attention and MLP masks of each of the 4 blocks
    assert sorted({p.op for p in net.populations() if p.kind == "host"}) == ["layernorm", "softmax"]
    x = np.random.default_rng(3).uniform(0, 1, (4, 1, 8, 8))
    session = ort.InferenceSession(str(path))
    ref = np.concatenate([session.run(None, {"image": x[i:i + 1].astype(np.float32)})[0] for i in range(len(x))])
    np.testing.assert_allclose(evaluate(net, x)["post"][net.readout.name], ref, rtol=1e-4, atol=1e-4)
