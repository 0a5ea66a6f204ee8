"""A small residual CNN for CPU training at 64-112 px: the project's default backbone."""

from __future__ import annotations

from torch import nn
from torchvision.models.resnet import BasicBlock


def _stage(cin: int, cout: int, blocks: int, stride: int) -> nn.Sequential:
    down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))
    layers = [BasicBlock(cin, cout, stride=stride, downsample=down)]
    layers += [BasicBlock(cout, cout) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


class SmallResNet(nn.Module):
    """Stem (stride 2) and three residual stages (stride 2 each): a 112 px face gives a 7x7 map.

    ``widths`` are the stem and stage channels; the output has ``widths[-1]`` channels.
    """

    def __init__(self, widths: tuple[int, ...] = (32, 64, 128, 256), blocks: int = 1):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, widths[0], 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True),
        )
        self.stages = nn.Sequential(*[_stage(a, b, blocks, 2) for a, b in zip(widths[:-1], widths[1:])])
        self.out_channels = widths[-1]
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        return self.stages(self.stem(x))
