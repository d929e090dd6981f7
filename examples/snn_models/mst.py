"""Masked Spiking Transformer (MST): a Swin Transformer built for ANN-to-SNN conversion.

Follows the specification in /work/shared/design/MST.md (Wang et al., "Masked Spiking
Transformer", ICCV 2023): a Swin backbone whose in-block LayerNorms are BatchNorm over channels,
every activation a QCFS (``levels`` steps, one learned scalar ``up`` each), and Random Spike
Masking (RSM) on the Q and K spike tensors and on the attention spike tensor (optionally on the
first MLP layer's output). Written from that description; no code is taken from elsewhere.

Per block (``C`` channels, ``N`` tokens, windows of ``M = window_size**2`` tokens)::

    x = x + attn(QCFS(BN1(x)))              # windowed attention, shifted on odd blocks
    x = BN2(x)                              # MST.md: "x = BN2(x); x + IF(fc2(IF(fc1(IF(x)))))"
    x = x + QCFS(fc2(QCFS(fc1(QCFS(x)))))   # RSM optionally after the first QCFS of the MLP

    attn(x): qkv = Linear(x) -> q, k, v -> QCFS each -> RSM(q), RSM(k)
             a = QCFS((q @ k^T) * head_dim^-0.5) -> RSM(a) -> + rel. pos. bias (+ shift mask)
             -> softmax -> @ v -> QCFS -> proj Linear -> QCFS

The MLP skip starts from the *normalised* ``x`` (BN2 sits on the residual stream), as MST.md's
"Block" line reads literally (and as the reference evaluation does). ``norm2_on_skip=False``
gives the usual pre-norm Swin form ``x = x + MLP(QCFS(BN2(x)))`` instead.

Everything exports to ONNX opset 17 with static shapes as standard ops: layout is
Reshape / Transpose / Slice / Concat (torch.roll becomes Slice + Concat), RSM is
RandomUniformLike -> Greater -> Cast -> Mul, a token BatchNorm is Transpose ->
BatchNormalization -> Transpose, QCFS is Div -> Mul -> Add -> Floor -> Div -> Clip -> Mul.
A mask at ratio 0 exports nothing, unless the model is built with ``mask_nodes=True``: then
every mask site (q, k, attention, first MLP layer) exports its RSM chain, at ratio 0 too, so
that the compiler's ``--mask-ratio`` can set any of them on one exported model.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from .qcfs import QCFS

# Initial QCFS threshold, as for the digits models: most inputs are batch-normalised.
UP_INIT = 2.0
# Additive mask value between tokens that come from different regions of a shifted window.
SHIFT_MASK_VALUE = -100.0


class RandomSpikeMask(nn.Module):
    """RSM: each spike survives with probability ``1 - ratio``; active in eval mode too.

    Computes ``x * (torch.rand_like(x) > ratio)``, which exports as RandomUniformLike ->
    Greater -> Cast -> Mul. No rescaling by the keep probability: this is not dropout, masked
    spikes are simply lost. With ``ratio == 0`` the module is the identity and adds nothing to
    the graph (no random op), unless ``export_at_zero`` is set: then it computes (and exports)
    the same chain with ratio 0, a mask that is present but keeps every spike (save a draw of
    exactly 0.0, probability 2**-24), so a compiler can set its ratio later. That draw also
    advances torch's random generator, as any active mask does.
    """

    def __init__(self, ratio: float = 0.0, export_at_zero: bool = False):
        super().__init__()
        if not 0.0 <= ratio < 1.0:
            raise ValueError(f"mask ratio must lie in [0, 1), got {ratio}")
        self.ratio = float(ratio)
        self.export_at_zero = bool(export_at_zero)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.ratio == 0.0 and not self.export_at_zero:
            return x
        return x * (torch.rand_like(x) > self.ratio).to(x.dtype)

    def extra_repr(self) -> str:
        return f"ratio={self.ratio}" + (", export_at_zero=True" if self.export_at_zero else "")


class TokenBatchNorm(nn.Module):
    """BatchNorm over the channels of a token tensor [B, N, C] (MST's replacement for LN).

    Exports as Transpose -> BatchNormalization -> Transpose.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.bn = nn.BatchNorm1d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(x.transpose(1, 2)).transpose(1, 2)


def window_partition(x: torch.Tensor, window: int, height: int, width: int) -> torch.Tensor:
    """[B, H, W, C] -> [B * nW, window * window, C] (static sizes, batch left as -1)."""
    c = x.shape[-1]
    x = x.reshape(-1, height // window, window, width // window, window, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window * window, c)


def window_reverse(windows: torch.Tensor, window: int, height: int, width: int) -> torch.Tensor:
    """[B * nW, window * window, C] -> [B, H, W, C]; inverse of ``window_partition``."""
    c = windows.shape[-1]
    x = windows.reshape(-1, height // window, width // window, window, window, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, height, width, c)


def relative_position_index(window: int) -> torch.Tensor:
    """[M, M] index into the (2w-1)^2 bias table for every pair of tokens in a window."""
    coords = torch.stack(
        torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")
    ).flatten(1)  # [2, M]: (row, col) of each token
    rel = coords[:, :, None] - coords[:, None, :] + (window - 1)  # [2, M, M], in 0..2w-2
    return rel[0] * (2 * window - 1) + rel[1]


def shifted_window_mask(height: int, width: int, window: int, shift: int) -> torch.Tensor:
    """[1, nW, 1, M, M] additive mask (0 / -100) for attention inside cyclically shifted windows.

    After a roll by ``-shift`` the last windows of each row / column hold tokens from opposite
    image borders; tokens of different regions must not attend to each other.
    """
    region = torch.zeros(height, width)
    bands = ((0, -window), (-window, -shift), (-shift, None))
    label = 0
    for h0, h1 in bands:
        for w0, w1 in bands:
            region[h0:h1, w0:w1] = label
            label += 1
    ids = window_partition(region[None, :, :, None], window, height, width)[..., 0]  # [nW, M]
    differ = ids[:, None, :] != ids[:, :, None]  # [nW, M, M]
    mask = torch.zeros(differ.shape).masked_fill(differ, SHIFT_MASK_VALUE)
    return mask[None, :, None]


class WindowAttention(nn.Module):
    """Spiking multi-head self-attention inside windows of ``window * window`` tokens.

    ``mask_ratio`` masks the q, k and attention spikes; ``mask_nodes`` keeps those three masks
    in the graph at ratio 0 too (``RandomSpikeMask.export_at_zero``).
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        window: int,
        levels: int,
        mask_ratio: float = 0.0,
        qkv_bias: bool = True,
        up: float = UP_INIT,
        mask_nodes: bool = False,
    ):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by {num_heads} heads")
        self.dim, self.num_heads, self.window = dim, num_heads, window
        self.tokens = window * window
        self.head_dim = dim // num_heads
        self.scale = self.head_dim**-0.5
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.q_act = QCFS(levels, up)
        self.k_act = QCFS(levels, up)
        self.v_act = QCFS(levels, up)
        self.q_mask = RandomSpikeMask(mask_ratio, mask_nodes)
        self.k_mask = RandomSpikeMask(mask_ratio, mask_nodes)
        self.attn_act = QCFS(levels, up)
        self.attn_mask = RandomSpikeMask(mask_ratio, mask_nodes)
        self.out_act = QCFS(levels, up)  # after attn @ v
        self.proj = nn.Linear(dim, dim)
        self.proj_act = QCFS(levels, up)
        self.relative_position_bias_table = nn.Parameter(
            torch.zeros((2 * window - 1) ** 2, num_heads)
        )
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
        self.register_buffer("relative_position_index", relative_position_index(window))

    def relative_position_bias(self) -> torch.Tensor:
        """[1, heads, M, M] learned bias, gathered from the table by the constant index."""
        bias = self.relative_position_bias_table[self.relative_position_index.reshape(-1)]
        bias = bias.reshape(self.tokens, self.tokens, self.num_heads).permute(2, 0, 1)
        return bias.unsqueeze(0)

    def forward(self, x: torch.Tensor, shift_mask: torch.Tensor | None = None) -> torch.Tensor:
        """x: [B * nW, M, C]; shift_mask: [1, nW, 1, M, M] or None."""
        m, c, heads = self.tokens, self.dim, self.num_heads
        qkv = self.qkv(x).reshape(-1, m, 3, heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q = self.q_mask(self.q_act(qkv[0]))  # [B*nW, heads, M, head_dim]
        k = self.k_mask(self.k_act(qkv[1]))
        v = self.v_act(qkv[2])
        attn = (q @ k.transpose(-2, -1)) * self.scale
        attn = self.attn_mask(self.attn_act(attn))
        attn = attn + self.relative_position_bias()
        if shift_mask is not None:
            nw = shift_mask.shape[1]
            attn = (attn.reshape(-1, nw, heads, m, m) + shift_mask).reshape(-1, heads, m, m)
        attn = attn.softmax(dim=-1)
        x = (attn @ v).transpose(1, 2).reshape(-1, m, c)
        return self.proj_act(self.proj(self.out_act(x)))


class Mlp(nn.Module):
    """fc1 -> [BN] -> QCFS -> [RSM] -> fc2 -> [BN] -> QCFS (BN only with ``norm=True``).

    The RSM is in the graph when ``mask_ratio > 0`` or ``mask_nodes`` (then also at ratio 0).
    """

    def __init__(
        self,
        dim: int,
        hidden: int,
        levels: int,
        mask_ratio: float = 0.0,
        norm: bool = False,
        up: float = UP_INIT,
        mask_nodes: bool = False,
    ):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.norm1 = TokenBatchNorm(hidden) if norm else nn.Identity()
        self.act1 = QCFS(levels, up)
        self.mask = RandomSpikeMask(mask_ratio, mask_nodes)
        self.fc2 = nn.Linear(hidden, dim)
        self.norm2 = TokenBatchNorm(dim) if norm else nn.Identity()
        self.act2 = QCFS(levels, up)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.mask(self.act1(self.norm1(self.fc1(x))))
        return self.act2(self.norm2(self.fc2(x)))


class MSTBlock(nn.Module):
    """One (shifted-)window block on a fixed [height, width] token grid."""

    def __init__(
        self,
        dim: int,
        resolution: tuple[int, int],
        num_heads: int,
        window: int,
        shift: int,
        mlp_ratio: float,
        levels: int,
        attn_mask_ratio: float = 0.0,
        mlp_mask_ratio: float = 0.0,
        mlp_norm: bool = False,
        norm2_on_skip: bool = True,
        up: float = UP_INIT,
        mask_nodes: bool = False,
    ):
        super().__init__()
        self.height, self.width = resolution
        if min(resolution) <= window:
            # One window covers the whole grid: nothing to shift.
            window, shift = min(resolution), 0
        if self.height % window or self.width % window:
            raise ValueError(f"resolution {resolution} is not a multiple of window {window}")
        self.window, self.shift = window, shift
        self.norm2_on_skip = norm2_on_skip
        self.norm1 = TokenBatchNorm(dim)
        self.act1 = QCFS(levels, up)
        self.attn = WindowAttention(
            dim, num_heads, window, levels, attn_mask_ratio, up=up, mask_nodes=mask_nodes
        )
        self.norm2 = TokenBatchNorm(dim)
        self.act2 = QCFS(levels, up)
        self.mlp = Mlp(
            dim, int(dim * mlp_ratio), levels, mlp_mask_ratio, mlp_norm, up=up,
            mask_nodes=mask_nodes,
        )
        if shift:
            mask = shifted_window_mask(self.height, self.width, window, shift)
            self.register_buffer("shift_mask", mask, persistent=False)
        else:
            self.shift_mask = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w, s = self.height, self.width, self.shift
        c = x.shape[-1]
        y = self.act1(self.norm1(x)).reshape(-1, h, w, c)
        if s:
            y = torch.roll(y, shifts=(-s, -s), dims=(1, 2))
        y = self.attn(window_partition(y, self.window, h, w), self.shift_mask)
        y = window_reverse(y, self.window, h, w)
        if s:
            y = torch.roll(y, shifts=(s, s), dims=(1, 2))
        x = x + y.reshape(-1, h * w, c)
        if self.norm2_on_skip:
            # MST.md's literal "x = BN2(x); x + IF(fc2(IF(fc1(IF(x)))))": the skip is BN2(x).
            x = self.norm2(x)
            return x + self.mlp(self.act2(x))
        return x + self.mlp(self.act2(self.norm2(x)))


class PatchMerging(nn.Module):
    """2x2 neighbourhood -> 4C channels (strided Slice + Concat) -> BN -> Linear(4C, 2C) -> QCFS."""

    def __init__(self, dim: int, resolution: tuple[int, int], levels: int, up: float = UP_INIT):
        super().__init__()
        self.height, self.width = resolution
        if self.height % 2 or self.width % 2:
            raise ValueError(f"patch merging needs an even resolution, got {resolution}")
        self.norm = TokenBatchNorm(4 * dim)
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)  # bias-free, as in Swin
        self.act = QCFS(levels, up)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[-1]
        x = x.reshape(-1, self.height, self.width, c)
        parts = [x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]]
        x = torch.cat(parts, dim=-1).reshape(-1, (self.height // 2) * (self.width // 2), 4 * c)
        return self.act(self.reduction(self.norm(x)))


class PatchEmbed(nn.Module):
    """Conv(kernel = stride = patch) -> BatchNorm2d -> QCFS, then tokens [B, H*W, C]."""

    def __init__(self, patch: int, in_chans: int, dim: int, levels: int, up: float = UP_INIT):
        super().__init__()
        self.dim = dim
        self.proj = nn.Conv2d(in_chans, dim, kernel_size=patch, stride=patch)
        self.norm = nn.BatchNorm2d(dim)
        self.act = QCFS(levels, up)

    def forward(self, x: torch.Tensor, tokens: int) -> torch.Tensor:
        x = self.act(self.norm(self.proj(x)))
        return x.reshape(-1, self.dim, tokens).transpose(1, 2)


class MaskedSpikingTransformer(nn.Module):
    """Swin-style MST sized entirely by its arguments (Swin-T: the defaults, ~28 M parameters).

    ``attn_mask_ratio`` masks the q, k and attention spike tensors of every block;
    ``mlp_mask_ratio`` the output of the first MLP layer. A mask at ratio 0 is left out of the
    graph, unless ``mask_nodes`` is set: then all four masks of every block are computed and
    exported (RandomUniformLike -> Greater -> Cast -> Mul), those at ratio 0 present but
    inactive, so that one exported model can be compiled at many ratios (``--mask-ratio``).
    The weights do not depend on ``mask_nodes``: a state dict loads either way. ``mlp_norm``
    adds the BatchNorm after each MLP linear that MST uses on ImageNet.
    """

    def __init__(
        self,
        img_size: int = 224,
        patch_size: int = 4,
        in_chans: int = 3,
        num_classes: int = 1000,
        embed_dim: int = 96,
        depths: tuple[int, ...] = (2, 2, 6, 2),
        num_heads: tuple[int, ...] = (3, 6, 12, 24),
        window_size: int = 7,
        mlp_ratio: float = 4.0,
        levels: int = 16,
        attn_mask_ratio: float = 0.0,
        mlp_mask_ratio: float = 0.0,
        mlp_norm: bool = False,
        norm2_on_skip: bool = True,
        up_init: float = UP_INIT,
        mask_nodes: bool = False,
    ):
        super().__init__()
        if len(depths) != len(num_heads):
            raise ValueError("depths and num_heads must have the same length")
        if img_size % patch_size:
            raise ValueError(f"img_size {img_size} is not a multiple of patch_size {patch_size}")
        self.config = dict(
            img_size=img_size, patch_size=patch_size, in_chans=in_chans, num_classes=num_classes,
            embed_dim=embed_dim, depths=tuple(depths), num_heads=tuple(num_heads),
            window_size=window_size, mlp_ratio=mlp_ratio, levels=levels,
            attn_mask_ratio=attn_mask_ratio, mlp_mask_ratio=mlp_mask_ratio, mlp_norm=mlp_norm,
            norm2_on_skip=norm2_on_skip, up_init=up_init, mask_nodes=mask_nodes,
        )
        side = img_size // patch_size
        self.tokens = side * side
        self.patch_embed = PatchEmbed(patch_size, in_chans, embed_dim, levels, up_init)
        self.stages = nn.ModuleList()
        dim = embed_dim
        for i, (depth, heads) in enumerate(zip(depths, num_heads)):
            stage = nn.Sequential()
            if i > 0:
                stage.append(PatchMerging(dim, (side, side), levels, up_init))
                side, dim = side // 2, dim * 2
            for j in range(depth):
                stage.append(
                    MSTBlock(
                        dim, (side, side), heads, window_size,
                        shift=window_size // 2 if j % 2 else 0,
                        mlp_ratio=mlp_ratio, levels=levels,
                        attn_mask_ratio=attn_mask_ratio, mlp_mask_ratio=mlp_mask_ratio,
                        mlp_norm=mlp_norm, norm2_on_skip=norm2_on_skip, up=up_init,
                        mask_nodes=mask_nodes,
                    )
                )
            self.stages.append(stage)
        self.num_features = dim
        self.norm = nn.LayerNorm(dim)  # the one real LayerNorm, before pooling
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x, self.tokens)
        for stage in self.stages:
            x = stage(x)
        return self.head(self.norm(x).mean(dim=1))


def count_qcfs(model: nn.Module) -> int:
    return sum(isinstance(m, QCFS) for m in model.modules())


def expected_qcfs(depths: tuple[int, ...]) -> int:
    """QCFS modules the architecture implies: patch embedding 1, each patch merging 1, each
    block 10 (BN1 input, q, k, v, attn, attn @ v, proj, BN2 input, fc1, fc2)."""
    return 1 + (len(depths) - 1) + 10 * sum(depths)


def export_onnx(model: nn.Module, path: str | Path, img_size: int, in_chans: int, opset: int = 17) -> list[str]:
    """Export at `opset` (17 unless asked), batch 1, static shapes; return the sorted op types
    of the graph."""
    import onnx

    model.eval()
    torch.onnx.export(
        model,
        torch.zeros(1, in_chans, img_size, img_size),
        str(path),
        opset_version=opset,
        input_names=["image"],
        output_names=["logits"],
        do_constant_folding=True,
    )
    return sorted({node.op_type for node in onnx.load(str(path)).graph.node})
