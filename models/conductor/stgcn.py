"""ST-GCN motion encoder for COCO-13 conducting keypoints (M2S-Net's motion branch, ../shared/DESIGN.md §4).

Graph: the 13 ConductorMotion100 keypoints with edges (0,1)(0,2)(1,3)(2,4)(0,5)(0,6)(5,6)(5,7)(7,9)(6,8)(8,10)
(11,12)(5,11)(6,12) plus self loops; uniform partition (one adjacency), max hop 1, normalised as A·D⁻¹ (column
degrees), after Yan et al., "Spatial Temporal Graph Convolutional Networks" (AAAI 2018).

Encoder: BatchNorm1d over the 26 input channels (joint-major: channel ``2·joint + xy``), 10 ST-GCN blocks with
temporal kernel 3 (2→32 without residual, then nine 32→32 with identity residual), a learnable edge-importance
mask per block, then per frame flatten 32·13 = 416 (channel-major: ``13·channel + joint``) → Conv1d 416→64 + BN
→ 64-d per frame. Parameter names follow the official VirtualConductor checkpoint so it loads with strict=True.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from models.motion.skeleton import COCO13_EDGES

NUM_JOINTS = 13


def coco13_adjacency() -> np.ndarray:
    """The normalised ST-GCN adjacency ``(1, 13, 13)`` float32: (A + I) · D⁻¹ with D the column degrees."""
    adjacency = np.eye(NUM_JOINTS)
    for i, j in COCO13_EDGES:
        adjacency[i, j] = adjacency[j, i] = 1.0
    degree = adjacency.sum(axis=0)
    return (adjacency / degree[None, :])[None].astype(np.float32)


class GraphConv(nn.Module):
    """Spatial graph convolution: a 1×1 convolution to ``out·K`` channels, then aggregation over neighbours with
    the ``(K, V, V)`` adjacency: ``y[n,c,t,w] = Σ_k Σ_v x[n,k,c,t,v] · A[k,v,w]``."""

    def __init__(self, in_channels: int, out_channels: int, partitions: int = 1) -> None:
        super().__init__()
        self.partitions = partitions
        self.conv = nn.Conv2d(in_channels, out_channels * partitions, kernel_size=(1, 1))

    def forward(self, x: torch.Tensor, adjacency: torch.Tensor) -> torch.Tensor:
        # x: (N, C_in, T, V) -> (N, C_out, T, V)
        x = self.conv(x)
        n, kc, t, v = x.shape
        x = x.view(n, self.partitions, kc // self.partitions, t, v)
        return torch.einsum("nkctv,kvw->nctw", x, adjacency).contiguous()


class STGCNBlock(nn.Module):
    """Graph convolution → BN → ReLU → temporal conv (kernel 3, stride 1) → BN, plus residual, then ReLU."""

    def __init__(self, in_channels: int, out_channels: int, temporal_kernel: int = 3, residual: bool = True) -> None:
        super().__init__()
        self.gcn = GraphConv(in_channels, out_channels)
        self.tcn = nn.Sequential(
            nn.BatchNorm2d(out_channels),
            nn.ReLU(),
            nn.Conv2d(out_channels, out_channels, (temporal_kernel, 1), (1, 1), ((temporal_kernel - 1) // 2, 0)),
            nn.BatchNorm2d(out_channels),
            nn.Dropout(0.0),
        )
        if residual and in_channels != out_channels:
            raise ValueError("the M2S ST-GCN only uses identity residuals (in_channels == out_channels)")
        self.residual = residual

    def forward(self, x: torch.Tensor, adjacency: torch.Tensor) -> torch.Tensor:
        # x: (N, C_in, T, V) -> (N, C_out, T, V)
        out = self.tcn(self.gcn(x, adjacency))
        if self.residual:
            out = out + x
        return torch.relu(out)


class STGCN(nn.Module):
    """The ST-GCN trunk: input BatchNorm, 10 blocks with edge importance. Input ``(N, 2, T, 13)``, output
    ``(N, 32, T, 13)``.

    ``fcn`` is an unused classification head (256→32) present in the official checkpoint; it is kept so that
    checkpoint loads with strict=True and never called.
    """

    def __init__(self, in_channels: int = 2, channels: int = 32, blocks: int = 10) -> None:
        super().__init__()
        self.register_buffer("A", torch.from_numpy(coco13_adjacency()))
        self.data_bn = nn.BatchNorm1d(in_channels * NUM_JOINTS)
        layers = [STGCNBlock(in_channels, channels, residual=False)]
        layers += [STGCNBlock(channels, channels) for _ in range(blocks - 1)]
        self.st_gcn_networks = nn.ModuleList(layers)
        self.edge_importance = nn.ParameterList([nn.Parameter(torch.ones_like(self.A)) for _ in layers])
        self.fcn = nn.Conv2d(256, channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, t, v = x.shape
        # BatchNorm over joint-major channels (2·joint + xy), as the checkpoint was trained.
        x = x.permute(0, 3, 1, 2).reshape(n, v * c, t)
        x = self.data_bn(x)
        x = x.view(n, v, c, t).permute(0, 2, 3, 1).contiguous()
        for block, importance in zip(self.st_gcn_networks, self.edge_importance, strict=True):
            x = block(x, self.A * importance)
        return x


class MotionEncoder(nn.Module):
    """COCO-13 motion ``(N, T, 13, 2)`` → per-frame features ``(N, T, 64)`` (M2S-Net's motion branch)."""

    def __init__(self) -> None:
        super().__init__()
        self.st_gcn = STGCN()
        self.fc = nn.Sequential(nn.Conv1d(32 * NUM_JOINTS, 64, kernel_size=1), nn.BatchNorm1d(64))

    def forward(self, motion: torch.Tensor) -> torch.Tensor:
        if motion.dim() != 4 or motion.shape[2:] != (NUM_JOINTS, 2):
            raise ValueError(f"motion must be (N, T, 13, 2), got {tuple(motion.shape)}")
        x = motion.permute(0, 3, 1, 2)  # (N, 2, T, 13)
        h = self.st_gcn(x)  # (N, 32, T, 13)
        n, c, t, v = h.shape
        h = h.permute(0, 1, 3, 2).reshape(n, c * v, t)  # channel-major 13·c + v
        return self.fc(h).transpose(1, 2)  # (N, T, 64)
