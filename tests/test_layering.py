"""The package's layers: imports go one way, downwards, at the top of each
file, and no two modules import each other, directly or through others."""
import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / 'ghnlib'

#: ghnlib's subpackages (and top-level modules), top layer first. A module
#: may import from its own subpackage and from any lower layer; packages of
#: one layer are independent of each other.
LAYERS = (
    ('cli', ),
    ('experiments', ),
    ('local', 'hyperrep'),
    ('zoo', ),
    ('train', ),
    ('nn', ),
    ('graph', 'archspace', 'models', 'data', 'ops', 'metrics'),
    ('init', ),
    ('utils', ),
    ('errors', ),
)
LAYER_OF = {package: depth for depth, layer in enumerate(LAYERS)
            for package in layer}
#: The package root and `python -m ghnlib` sit above every layer.
ROOTS = ('ghnlib', 'ghnlib.__main__')


def module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix('').parts
    if parts[-1] == '__init__':
        parts = parts[:-1]
    return '.'.join(parts)


def package_of(module: str) -> str:
    return module.split('.')[1]


def resolve(module: str, node: ast.ImportFrom, is_package: bool) -> str:
    if node.level == 0:
        return node.module
    base = module.split('.')
    base = base[:len(base) - node.level + (1 if is_package else 0)]
    return '.'.join(base + ([node.module] if node.module else []))


def imported_modules(module: str, node: ast.ImportFrom,
                     is_package: bool, known: set) -> list:
    target = resolve(module, node, is_package)
    if not target.startswith('ghnlib'):
        return []
    # `from ghnlib.x import y` imports ghnlib.x.y where that is a module.
    submodules = [f'{target}.{alias.name}' for alias in node.names
                  if f'{target}.{alias.name}' in known]
    return submodules or [target]


def collect():
    files = sorted(PACKAGE.rglob('*.py'))
    known = {module_name(f) for f in files}
    imports = {}
    for path in files:
        module = module_name(path)
        tree = ast.parse(path.read_text(encoding='utf-8'))
        found = []
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found += [(a.name, node.lineno, node.col_offset)
                          for a in node.names if a.name.startswith('ghnlib')]
            elif isinstance(node, ast.ImportFrom):
                found += [(target, node.lineno, node.col_offset)
                          for target in imported_modules(
                              module, node, path.name == '__init__.py', known)]
        imports[module] = found
    return imports


IMPORTS = collect()


def test_every_subpackage_has_a_layer():
    packages = {package_of(m) for m in IMPORTS if m not in ROOTS
                and m != 'ghnlib._C'}
    assert packages - set(LAYER_OF) == set(), (
        'add the new subpackage to LAYERS (and to the layer picture in '
        'DESIGN.md)')


def test_ghnlib_imports_sit_at_the_top_of_their_files():
    inner = [f'{module}:{line} imports {target}'
             for module, found in IMPORTS.items()
             for target, line, column in found if column > 0]
    assert inner == []


@pytest.mark.parametrize('module', sorted(m for m in IMPORTS
                                          if m not in ROOTS))
def test_imports_go_downwards(module):
    own = package_of(module)
    wrong = []
    for target, line, _ in IMPORTS[module]:
        if target == 'ghnlib':
            wrong.append(f'line {line}: the package root {target}')
            continue
        other = package_of(target)
        if other != own and LAYER_OF[other] <= LAYER_OF[own]:
            wrong.append(f'line {line}: {target} (layer of {other!r} is not '
                         f'below {own!r})')
    assert wrong == []


def find_cycle(graph):
    """One import cycle of :obj:`graph` (module → imported modules) as a
    list of modules, or :obj:`None`."""
    state = {}

    def visit(module, path):
        state[module] = 'open'
        for target in sorted(graph.get(module, ())):
            if state.get(target) == 'open':
                return path[path.index(target):] + [target]
            if target not in state:
                found = visit(target, path + [target])
                if found:
                    return found
        state[module] = 'done'
        return None

    for module in sorted(graph):
        if module not in state:
            found = visit(module, [module])
            if found:
                return found
    return None


def test_no_import_cycles_between_modules():
    # A package's __init__ importing its own modules is the usual layout; a
    # module importing its own package's __init__ closes a cycle.
    graph = {module: {target for target, _, _ in found
                      if target in IMPORTS and target != module}
             for module, found in IMPORTS.items()}
    assert find_cycle(graph) is None


def test_the_checks_see_violations():
    source = 'def f():\n    from ghnlib.nn import GraphHyperNetwork\n'
    node = ast.parse(source).body[0].body[0]
    assert node.col_offset > 0
    assert imported_modules('ghnlib.graph.x', node, False,
                            set(IMPORTS)) == ['ghnlib.nn']
    assert LAYER_OF['nn'] < LAYER_OF['graph']
    relative = ast.parse('from . import vocabulary').body[0]
    assert imported_modules('ghnlib.graph.x', relative, False,
                            set(IMPORTS)) == ['ghnlib.graph.vocabulary']
    assert find_cycle({'a': {'b'}, 'b': {'c'}, 'c': {'a'}}) == [
        'a', 'b', 'c', 'a']
    assert find_cycle({'a': {'b'}, 'b': {'c'}, 'c': set()}) is None
