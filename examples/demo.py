"""ghnlib demo: models → computational graphs → weights from a GHN.

Converts a CIFAR ResNet-20 from ghnlib's registry and, when torchvision is
installed, a ResNet-50 and a ViT-B/16; prints what each graph holds and how
long conversion took, and draws the ResNet-20 graph. Then a Noise GHN
(randomly initialised: training it is a separate step) predicts all
parameters of the ResNet-20 five times in one batched pass; the demo prints
per-layer statistics next to He initialisation and how different the five
samples are, and plots them.

    python examples/demo.py --out out/demo
"""
import argparse
import os
import time

import torch

from ghnlib import GraphHyperNetwork
from ghnlib.graph import draw_graph, to_graph
from ghnlib.models import get_model
from optional_torchvision import import_torchvision


def convert(name, model, input_shape):
    start = time.perf_counter()
    graph = to_graph(model, input_shape=input_shape)
    elapsed = (time.perf_counter() - start) * 1e3
    total = sum(p.numel() for p in model.parameters())
    print(f'\n== {name}: input {tuple(input_shape)}, converted in '
          f'{elapsed:.1f} ms')
    print(graph.summary())
    print(f'every parameter placed: {graph.num_params == total} '
          f'({graph.num_params:,} of {total:,})')
    return graph


def accuracy_at_init(model, train_set, test_set):
    """Test accuracy with no training (batch-norm statistics from a few
    training batches; no weight changes)."""
    from ghnlib.train import calibrate_batch_norm, evaluate
    calibrate_batch_norm(model, train_set, num_batches=4)
    return evaluate(model, test_set).accuracy


def predict_with_ghn(graph, out_dir):
    from ghnlib.data import load_digits
    from ghnlib.init import initialize

    ghn = GraphHyperNetwork.pretrained('digits-noise')
    print(f'\n== {ghn}: {sum(p.numel() for p in ghn.parameters()):,} '
          "parameters, shipped with ghnlib ('digits-noise')")
    start = time.perf_counter()
    with torch.no_grad():
        samples = ghn.predict([graph] * 5,
                              generator=torch.Generator().manual_seed(0))
    print(f'five ResNet-20 weight sets in one batched pass: '
          f'{(time.perf_counter() - start) * 1e3:.1f} ms')

    model = get_model('resnet20')
    print(f'{"parameter":28s} {"shape":>16s} {"GHN std":>8s} {"He std":>8s}')
    for name in ('conv1.weight', 'layer1.0.conv1.weight',
                 'layer3.2.conv2.weight', 'fc.weight', 'bn1.weight'):
        value = samples[0][name]
        fan_in = value[0].numel()
        he = (2 / fan_in) ** 0.5 if value.dim() > 1 else float('nan')
        print(f'{name:28s} {str(tuple(value.shape)):>16s} '
              f'{value.std():8.4f} {he:8.4f}')

    flat = torch.stack([torch.cat([v.flatten() for v in s.values()])
                        for s in samples])
    cosine = torch.nn.functional.cosine_similarity(
        flat[:, None], flat[None], dim=-1)
    upper = cosine[torch.triu(torch.ones(5, 5, dtype=torch.bool), 1)]
    print(f'pairwise cosine similarity of the five samples: mean '
          f'{upper.mean():.3f} (min {upper.min():.3f}, max {upper.max():.3f})')

    train_set = load_digits(image_size=16, channels=3, split='train')
    test_set = load_digits(image_size=16, channels=3, split='test')
    ghn_accuracy = []
    for sample in samples:
        model = get_model('resnet20')
        model.load_state_dict(sample, strict=False)
        ghn_accuracy.append(accuracy_at_init(model, train_set, test_set))
    he_accuracy = [accuracy_at_init(
        initialize(get_model('resnet20'), 'he',
                   generator=torch.Generator().manual_seed(seed)),
        train_set, test_set) for seed in range(5)]
    print(f'ResNet-20 on held-out digits, no training: Noise GHN samples '
          f'{" ".join(f"{a:.3f}" for a in ghn_accuracy)}; He '
          f'{" ".join(f"{a:.3f}" for a in he_accuracy)} (chance 0.1)')

    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 7, figsize=(15, 2.6))
    kernels = [s['conv1.weight'][:, 0] for s in samples]
    for k, (ax, kernel) in enumerate(zip(axes, kernels)):
        grid = kernel[:16].reshape(4, 4, 3, 3).permute(0, 2, 1, 3).reshape(12, 12)
        ax.imshow(grid, cmap='RdBu')
        ax.set_title(f'sample {k + 1}: conv1', fontsize=8)
        ax.set_axis_off()
    axes[5].imshow(cosine, vmin=-1, vmax=1, cmap='viridis')
    axes[5].set_title('cosine similarity', fontsize=8)
    axes[6].bar(range(5), ghn_accuracy, width=0.4, label='Noise GHN')
    axes[6].bar([i + 0.4 for i in range(5)], he_accuracy, width=0.4,
                label='He')
    axes[6].set_ylim(0, 1)
    axes[6].set_title('test accuracy at init', fontsize=8)
    axes[6].legend(fontsize=6)
    fig.tight_layout()
    png = os.path.join(out_dir, 'noise_ghn_samples.png')
    fig.savefig(png, dpi=120)
    print(f'plot: {png}')


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', default='out/demo')
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)

    graph = convert('resnet20 (ghnlib)', get_model('resnet20'), (1, 3, 32, 32))
    png = os.path.join(args.out, 'resnet20_graph.png')
    draw_graph(graph, png)
    graph.save(os.path.join(args.out, 'resnet20_graph.pt'))
    print(f'drawing: {png}')

    predict_with_ghn(graph, args.out)

    torchvision = import_torchvision()
    if torchvision is None:
        return
    for name in ('resnet50', 'vit_b_16'):
        with torch.device('meta'):  # structure only: no memory, no init
            model = torchvision.models.get_model(name)
        convert(f'{name} (torchvision)', model, (1, 3, 224, 224))


if __name__ == '__main__':
    main()
