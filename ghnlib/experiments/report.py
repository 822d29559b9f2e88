r"""The experiment's report: Markdown tables and matplotlib figures."""
import os
from typing import Any, Dict, List

from ghnlib.utils.checkpoint import atomic_write

__all__ = ['write_report', 'FIGURES']

FIGURES = ('convergence.png', 'test_accuracy.png', 'ensemble_ece.png',
           'similarity.png')


def _fmt(value, digits=3) -> str:
    return '—' if value is None else f'{value:.{digits}f}'


def _short(spec: str) -> str:
    """A spec with its path relative to the working directory, or to the
    package for the GHNs shipped with ghnlib."""
    name, sep, path = spec.partition(':')
    if not sep:
        return spec
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if os.path.abspath(path).startswith(package + os.sep):
        return f'{name}:ghnlib/{os.path.relpath(path, package)}'
    return f'{name}:{os.path.relpath(path)}'


def _tables(results: Dict[str, Any]) -> List[str]:
    config = results['config']
    inits = results['inits']
    lines = [f"# {config['arch']} on {config['dataset']}: initialisations "
             'compared', '',
             f"{config['members']} networks per initialisation, "
             f"{config['epochs']} epoch(s) of the plain recipe (SGD, momentum "
             f"0.9, weight decay 1e-4, lr {config['lr']}, batch 128, no "
             'augmentation), validation every '
             f"{results['convergence'][inits[0]]['steps'][1]} steps. "
             f"Run time {results['seconds'] / 60:.1f} min. Initialisers: "
             + ', '.join(f'`{i}` = `{_short(s)}`'
                         for i, s in results['specs'].items())
             + '.', '']

    thresholds = list(results['steps_to_threshold'][inits[0]])
    lines += ['## Steps to validation-accuracy thresholds', '',
              'Mean optimizer steps until the validation accuracy first '
              'reaches the threshold, over the members that reached it '
              '(reached / trained).', '',
              '| init | ' + ' | '.join(f'≥ {t}' for t in thresholds) + ' |',
              '|---|' + '---|' * len(thresholds)]
    for init in inits:
        cells = []
        for t in thresholds:
            entry = results['steps_to_threshold'][init][t]
            cells.append(f"{_fmt(entry['mean'], 1)} ({entry['reached']}/"
                         f"{entry['of']})")
        lines.append(f'| {init} | ' + ' | '.join(cells) + ' |')

    lines += ['', '## Test accuracy of single networks', '',
              '| init | min | Q1 | median | Q3 | max | ECE median |',
              '|---|---|---|---|---|---|---|']
    for init in inits:
        q = results['test_accuracy'][init]
        ece = results['member_ece'][init]['median']
        lines.append(f"| {init} | {_fmt(q['min'])} | {_fmt(q['q1'])} | "
                     f"{_fmt(q['median'])} | {_fmt(q['q3'])} | "
                     f"{_fmt(q['max'])} | {_fmt(ece)} |")

    severities = list(results['ensembles'][inits[0]])
    lines += ['', f"## Ensembles of {config['ensemble_size']} under "
              'corruption', '',
              f"{config['ensembles']} random ensembles per initialisation "
              '(the same member indices for every initialisation), member '
              'probabilities averaged; severity 0 is the clean test set, '
              'others average the corruptions '
              f"({', '.join(config['corruptions'])}). Mean ± std over the "
              'ensembles.', '']
    for metric, title in (('accuracy_mean', 'Accuracy'),
                          ('ece_mean', 'Expected calibration error (10 bins)')):
        lines += [f'**{title}**', '',
                  '| init | ' + ' | '.join(f'severity {s}' for s in severities)
                  + ' |', '|---|' + '---|' * len(severities)]
        for init in inits:
            cells = [f"{_fmt(results['ensembles'][init][s][metric]['mean'])}"
                     f" ± {_fmt(results['ensembles'][init][s][metric]['std'])}"
                     for s in severities]
            lines.append(f'| {init} | ' + ' | '.join(cells) + ' |')
        lines.append('')

    if results['similarity']:
        lines += ['## Diversity of trained members', '',
                  'Mean over member pairs (strict upper triangle) on the '
                  'clean test set: prediction agreement and cosine '
                  'similarity of logits (lower means more diverse).', '',
                  '| init | prediction agreement | logit cosine similarity |',
                  '|---|---|---|']
        for init in inits:
            entry = results['similarity'][init]
            lines.append(f"| {init} | {_fmt(entry['agreement_mean'])} | "
                         f"{_fmt(entry['cosine_mean'])} |")
        lines.append('')
    lines += ['Figures: ' + ', '.join(f'![{f}]({f})' for f in FIGURES), '']
    return lines


def _figures(results: Dict[str, Any], out_dir: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    inits = results['inits']
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for init in inits:
        curve = results['convergence'][init]
        steps, mean, std = curve['steps'], curve['mean'], curve['std']
        ax.plot(steps, mean, label=init)
        ax.fill_between(steps, [m - s for m, s in zip(mean, std)],
                        [m + s for m, s in zip(mean, std)], alpha=0.15)
    ax.set_xlabel('optimizer steps')
    ax.set_ylabel('validation accuracy')
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, 'convergence.png'), dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.boxplot([results['test_accuracy'][i]['per_member'] for i in inits])
    ax.set_xticks(range(1, len(inits) + 1), inits, fontsize=7)
    ax.set_ylabel('test accuracy')
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, 'test_accuracy.png'), dpi=100)
    plt.close(fig)

    severities = list(results['ensembles'][inits[0]])
    fig, ax = plt.subplots(figsize=(6, 3.2))
    width = 0.8 / len(inits)
    for k, init in enumerate(inits):
        data = [results['ensembles'][init][s]['ece'] for s in severities]
        positions = [j + k * width for j in range(len(severities))]
        box = ax.boxplot(data, positions=positions, widths=width * 0.9,
                         patch_artist=True, manage_ticks=False)
        for patch in box['boxes']:
            patch.set_facecolor(f'C{k}')
        ax.plot([], [], color=f'C{k}', label=init)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(severities))],
                  severities)
    ax.set_xlabel('corruption severity (0: clean)')
    ax.set_ylabel('ensemble ECE')
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, 'ensemble_ece.png'), dpi=100)
    plt.close(fig)

    shown = [i for i in inits if i in results['similarity']]
    fig, axes = plt.subplots(2, max(1, len(shown)),
                             figsize=(1.9 * max(1, len(shown)), 4),
                             squeeze=False)
    for k, init in enumerate(shown):
        for row, key in enumerate(('agreement', 'cosine')):
            ax = axes[row][k]
            ax.imshow(results['similarity'][init][key], vmin=0, vmax=1,
                      cmap='viridis')
            ax.set_title(f"{init}\n{key} {results['similarity'][init][key + '_mean']:.2f}",
                         fontsize=7)
            ax.set_axis_off()
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, 'similarity.png'), dpi=100)
    plt.close(fig)


def write_report(results: Dict[str, Any], out_dir: str) -> None:
    """Writes :obj:`report.md` and :obj:`FIGURES` into :obj:`out_dir`."""
    text = '\n'.join(_tables(results))

    def write(tmp):
        with open(tmp, 'w') as handle:
            handle.write(text)
    atomic_write(os.path.join(out_dir, 'report.md'), write)
    _figures(results, out_dir)
