"""Resolve a MODEL string: a zoo name, a spec file, or a Python target that builds an nn.Module.

Accepted forms (the same wherever a MODEL is: ``show``, ``graph``, ``check``, ``train --model``)::

    alexnet                              a zoo name
    net.json / net.yaml / net.toml       a spec file (no torch needed)
    path/to/file.py:Net                  a class (instantiated with no arguments) in a file
    package.module:Net                   the same, from an importable module
    module:make_net(num_classes=10)      a factory or class called with literal arguments
    timm:resnet50 / timm:vit_small_patch16_224(num_classes=10)
                                         an architecture in timm's registry (no weights)
    hf:config.json / hf:folder / hf:llama / hf:llama:causal-lm / hf:org/name
                                         a Hugging Face configuration (no weights)

Zoo names and spec files never run code: a spec is data (``yaml.safe_load``, ``json``,
``tomllib``), and a name with a spec suffix is only ever a spec file, even when it has a ``:``
in it (``net:v3.json`` beside a ``net.py`` is that file or "no such spec file"). A Python
target imports that file or module, which runs its code exactly as ``python file.py`` would;
that is what naming Python means.

What the target names is checked before anything is called: an ``nn.Module`` subclass (or a
shapecalc spec class), or a function that returns a module: one written in the user's own code
(the file's folder or the current folder), or one whose return annotation says so and that is
not torch's own (torch rebuilds modules from code: ``reduce_graph_module`` execs a string).
Private names are refused. Anything else (``os:system('…')``, ``subprocess:getoutput(...)``,
``builtins:exec(...)``, ``mymod:sys.exit(0)``) is refused without being called, and
standard-library modules are not imported at all. Arguments are parsed with :mod:`ast` and
read with ``ast.literal_eval``, so ``make_net(__import__('os'))`` is refused rather than run.
The check guards against mistakes; it is not a sandbox. Exceptions raised by the user's code,
``SystemExit`` included, become one-line errors.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
import sysconfig
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from shapecalc.core.blocks import Block
from shapecalc.core.errors import SpecError, user_code
from shapecalc.models.model_source import HF_PREFIX, TIMM_PREFIX, ModelSource, module_source
from shapecalc.models.target_syntax import parse_target

FORMS = ("a zoo name, a spec file (.json/.yaml/.toml), path/to/file.py:Net, package.module:Net, "
         "timm:NAME or hf:CONFIG")


def is_torch_module_class(cls: type) -> bool:
    """True for ``nn.Module`` subclasses, decided from the class hierarchy without importing torch."""
    return any(c.__name__ == "Module" and c.__module__ == "torch.nn.modules.module"
               for c in getattr(cls, "__mro__", ()))


def is_torch_module(obj: Any) -> bool:
    """True for ``nn.Module`` instances, decided from the class hierarchy without importing torch."""
    return is_torch_module_class(type(obj))


def resolve(text: str, *, max_nodes: int | None = None, **zoo_kwargs: Any) -> ModelSource:
    """The :class:`~shapecalc.models.model_source.ModelSource` that ``text`` names.

    ``max_nodes`` bounds what a spec file expands to (default
    :data:`~shapecalc.core.blocks.DEFAULT_MAX_NODES`, or the command line's ``--max-nodes``)."""
    from shapecalc.models.zoo import ZOO, get_entry

    raw = str(text).strip()
    if not raw:
        raise SpecError(f"MODEL is empty; give {FORMS}")
    if raw.lower() in ZOO:
        entry = get_entry(raw)
        spec = entry.spec(**zoo_kwargs)
        return ModelSource(entry.name, spec.to_graph(entry.name), entry.default_input, spec,
                           entry.description, entry.source)
    # hf:path/config.json names a configuration, not a spec file.
    if raw.startswith(HF_PREFIX):
        from shapecalc.models.hf_models import hf_source

        return hf_source(raw)
    if raw.startswith(TIMM_PREFIX):
        from shapecalc.models.timm_models import timm_source

        found = timm_source(raw)
        if found is not None:
            return found
    from shapecalc.models.specfile import is_spec_path, load_spec

    # A name with a spec suffix is only ever a spec file, whatever else it holds: "net:v3.json"
    # beside a net.py is that file or an error, never an import of net.py.
    if is_spec_path(raw):
        doc = load_spec(raw, max_nodes=max_nodes)
        return ModelSource(doc.name, doc.block.to_graph(doc.name, max_nodes=max_nodes), doc.input_shape,
                           doc.block,
                           f"spec file {raw}", raw)
    if ":" in raw:
        return from_target(raw)
    if raw.endswith(".py"):
        raise SpecError(f"{raw}: name the class or factory in it, like {raw}:Net")
    try:
        get_entry(raw)
    except SpecError as err:
        raise SpecError(f"{err}; MODEL can also be {FORMS}") from None
    raise AssertionError("unreachable")  # pragma: no cover


@contextmanager
def _on_path(folder: str) -> Iterator[None]:
    """Let the user's file import its neighbours, without leaving the folder on sys.path."""
    sys.path.insert(0, folder)
    try:
        yield
    finally:
        try:
            sys.path.remove(folder)
        except ValueError:
            pass


def _is_path(location: str) -> bool:
    return location.endswith(".py") or "/" in location or "\\" in location


def import_module_of(location: str) -> Any:
    """Import ``path/to/file.py`` or ``package.module``; failures become one-line SpecErrors.

    Importing runs the module's code (as ``python file.py`` would). Standard-library modules
    define no models, so they are refused before being imported (``os``, ``subprocess``, …).
    """
    top = location.split(".")[0]
    if not _is_path(location) and (top in sys.stdlib_module_names or top in sys.builtin_module_names):
        raise SpecError(f"{location!r} is part of Python's standard library, which defines no "
                        "models; name your own file or package (path/to/file.py:Net)")
    try:
        with user_code(f"importing {location}"):
            if _is_path(location):
                path = Path(location)
                if not path.is_file():
                    raise SpecError(f"{location}: no such Python file")
                name = f"_shapecalc_user_{abs(hash(str(path.resolve())))}"
                spec = importlib.util.spec_from_file_location(name, path)
                if spec is None or spec.loader is None:
                    raise SpecError(f"{location}: cannot be imported as Python")
                module = importlib.util.module_from_spec(spec)
                with _on_path(str(path.resolve().parent)):
                    sys.modules[name] = module
                    spec.loader.exec_module(module)
                return module
            with _on_path(str(Path.cwd())):
                return importlib.import_module(location)
    except SpecError:
        raise
    except ModuleNotFoundError as err:
        from shapecalc.core.extras import missing_from_import

        no_torch = missing_from_import(err, f"{location} (it imports torch)")
        if no_torch is not None:
            raise no_torch from None
        raise SpecError(f"cannot import {location!r}: {err}") from None
    except Exception as err:  # the user's module raised while importing
        raise SpecError(f"importing {location} failed: {type(err).__name__}: {err}") from None


def _returns_model(fn: Any) -> bool:
    """Whether ``fn``'s return annotation names an nn.Module (or spec Block) subclass."""
    note = getattr(fn, "__annotations__", {}).get("return")
    if isinstance(note, str):  # postponed annotations: look the name up where fn was written
        obj: Any = getattr(fn, "__globals__", {})
        parts = note.strip("'\"").split(".")
        value = obj.get(parts[0]) if isinstance(obj, dict) else None
        for part in parts[1:]:
            value = getattr(value, part, None)
        note = value
    return isinstance(note, type) and (is_torch_module_class(note) or issubclass(note, Block))


def _under(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _written_by_user(fn: Any, roots: list[Path]) -> bool:
    """Whether ``fn`` is a Python function written in the user's own files (under ``roots``),
    not in the standard library, an installed package or shapecalc itself."""
    code = getattr(fn, "__code__", None)
    if code is None:
        return False
    try:
        where = Path(code.co_filename).resolve()
    except (OSError, ValueError):
        return False
    installed = {sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    installed.add(str(Path(__file__).resolve().parent))  # shapecalc's own package
    if any(_under(where, Path(p).resolve()) for p in installed):
        return False
    return any(_under(where, root) for root in roots)


#: Packages whose functions are never called as a MODEL, annotated or not: torch's functions
#: that return a module rebuild it from code or a file (``torch.fx.graph_module:
#: reduce_graph_module`` execs its argument), and shapecalc's own are not model factories.
_NO_FACTORIES = frozenset({"torch", "shapecalc"})


def check_callable(obj: Any, label: str, location: str) -> None:
    """Refuse, before calling it, anything that is not a model class or a model factory.

    This guards against mistakes (naming ``os:system`` or a helper instead of the model); it is
    not a sandbox. Importing the target already ran its module's code, and a factory of an
    installed package does whatever that package does; a Python target is trusted code."""
    if isinstance(obj, type):
        if is_torch_module_class(obj) or issubclass(obj, Block):
            return
        raise SpecError(f"{label} is a class but not an nn.Module; MODEL must name an nn.Module "
                        "subclass or a function that returns one")
    fn = getattr(obj, "__func__", obj)  # a bound or class method: its function
    if not inspect.isfunction(fn):
        raise SpecError(f"{label} is a {type(obj).__name__}, not an nn.Module class or a Python "
                        "function that returns one; it was not called")
    roots = [Path(location).resolve().parent] if _is_path(location) else [Path.cwd().resolve()]
    if _written_by_user(fn, roots):
        return
    home = (getattr(fn, "__module__", None) or "").split(".")[0]
    if home in _NO_FACTORIES:
        raise SpecError(f"{label} is a function of {home}, which defines model classes, not model "
                        "factories (its functions that return modules rebuild them from code or "
                        "files); name an nn.Module class or your own function; it was not called")
    if _returns_model(fn):
        return
    raise SpecError(f"{label} is not an nn.Module class, not annotated to return one and not "
                    "defined in your own code; it was not called")


def from_target(text: str) -> ModelSource:
    """``location:Name`` / ``location:factory(args)`` → a ModelSource (Module, Block or spec)."""
    location, target = text.split(":", 1)
    if not location or not target.strip():
        raise SpecError(f"{text!r}: expected path/to/file.py:Net or package.module:Net")
    path, args, kwargs, called = parse_target(target)
    private = next((part for part in path if part.startswith("_")), None)
    if private is not None:
        raise SpecError(f"{text!r}: {private!r} is a private name; name the model class or "
                        "factory its module makes public")
    module = import_module_of(location)
    obj: Any = module
    for i, part in enumerate(path):
        if not hasattr(obj, part):
            import difflib

            names = [n for n in dir(obj) if not n.startswith("_")]
            hint = difflib.get_close_matches(part, names, n=1)
            where = location if i == 0 else ".".join(path[:i])
            raise SpecError(f"{where} has no {part!r}" + (f" (did you mean {hint[0]!r}?)" if hint else ""))
        obj = getattr(obj, part)
    label = ".".join(path)
    if isinstance(obj, type) or (callable(obj) and not is_torch_module(obj)):
        check_callable(obj, label, location)
        try:
            with user_code(f"{label}()"):
                obj = obj(*args, **kwargs)
        except SpecError:
            raise
        except Exception as err:
            hint = "" if called else f"; give arguments like {location}:{label}(num_classes=10)"
            raise SpecError(f"{label}() failed: {type(err).__name__}: {err}{hint}") from None
    elif called:
        raise SpecError(f"{label} is a {type(obj).__name__}, not something to call with arguments")
    name = path[-1]
    if isinstance(obj, Block):
        return ModelSource(name, obj.to_graph(name), None, obj, f"spec from {text}", text)
    if is_torch_module(obj):
        with user_code(f"tracing {label}"):
            return module_source(obj, name=name, source=text)
    raise SpecError(f"{text} gave a {type(obj).__name__}; expected an nn.Module (or a shapecalc spec Block)")


__all__ = ["FORMS", "check_callable", "from_target", "import_module_of", "is_torch_module",
           "is_torch_module_class", "parse_target", "resolve"]
