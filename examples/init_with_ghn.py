"""Initialise a torchvision model and a custom module with a graph
hypernetwork.

    python examples/init_with_ghn.py [--ghn ghn.safetensors]

Without --ghn a randomly initialised Noise GHN is used (the API is the
same; predictions become useful once the GHN is trained).
"""
import argparse

import torch
import torch.nn as nn

from ghnlib import GraphHyperNetwork
from ghnlib.graph import to_graph
from optional_torchvision import import_torchvision


class AudioNet(nn.Module):
    """A custom 1-D model: any nn.Module converts."""
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv1d(1, 32, 9, stride=4), nn.BatchNorm1d(32), nn.GELU(),
            nn.Conv1d(32, 64, 5, stride=2), nn.BatchNorm1d(64), nn.GELU(),
            nn.AdaptiveAvgPool1d(1), nn.Flatten())
        self.head = nn.Linear(64, 10)

    def forward(self, waveform):
        return self.head(self.features(waveform))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--ghn', help='a GHN checkpoint (GraphHyperNetwork.save)')
    args = parser.parse_args()
    ghn = (GraphHyperNetwork.load(args.ghn) if args.ghn
           else GraphHyperNetwork(noise_dim=8))

    torchvision = import_torchvision()
    if torchvision is not None:
        model = torchvision.models.mobilenet_v3_small(num_classes=10)
        ghn.init_(model, generator=torch.Generator().manual_seed(0))
        print('mobilenet_v3_small initialised:',
              model.eval()(torch.randn(2, 3, 64, 64)).shape)

    audio = AudioNet()
    graph = to_graph(audio, torch.randn(1, 1, 16000))  # non-image input
    ghn.init_(audio, graph=graph, generator=torch.Generator().manual_seed(0))
    print('AudioNet initialised:', audio.eval()(torch.randn(2, 1, 16000)).shape)


if __name__ == '__main__':
    main()
