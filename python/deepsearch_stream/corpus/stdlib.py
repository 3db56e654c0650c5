"""What the standard library documents, read from sources (with :mod:`ast`, never
imported) or from built-in and extension modules."""

from __future__ import annotations

import ast
import inspect
import logging
import re
import sys
import sysconfig
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from importlib import import_module
from importlib.machinery import ExtensionFileLoader
from importlib.util import find_spec
from pathlib import Path
from types import ModuleType

_log = logging.getLogger(__name__)

#: Bounds how far re-exports are followed through private modules.
_MAX_FOLLOW_DEPTH = 6

# Implementation modules documented under another name: their public functions are
# exported as part of ``os`` (posix, nt) and ``os.path`` (the path modules).
_IMPLEMENTATION = frozenset({"genericpath", "ntpath", "nt", "posix", "posixpath"})

# Extension modules whose import has effects beyond defining names: importing readline
# initialises the terminal (and may write escape sequences to stdout).
_NO_IMPORT = frozenset({"readline"})

_ADDRESS = re.compile(r" at 0x[0-9A-Fa-f]+")

_PROPERTY_DECORATORS = frozenset(
    {"abstractproperty", "cached_property", "deleter", "getter", "property", "setter"}
)

_FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef

# ``try``/``except*`` (ast.TryStar) exists from Python 3.11 on.
_TRY_NODES: tuple[type[ast.stmt], ...] = tuple(
    t for t in (ast.Try, getattr(ast, "TryStar", None)) if isinstance(t, type)
)


@dataclass(frozen=True)
class _Entry:
    """A documented object: a function, a class (with its methods) or a property."""

    name: str
    kind: str  # "def", "async def", "class" or "property"
    signature: str  # "(a, b=1) -> int"; "" when unknown
    doc: str
    bases: tuple[str, ...] = ()
    methods: tuple[_Entry, ...] = ()


@dataclass(frozen=True)
class _Source:
    """What the export needs from a parsed module; the syntax tree itself is dropped."""

    doc: str
    exported: list[str] | None  # a literal __all__
    local: dict[str, _Entry]  # top-level classes and functions, first definition wins
    bindings: tuple[ast.stmt, ...]  # imports and ``name = module.attr``, in order


class _Stdlib:
    """What the standard library documents, read from sources or extension modules."""

    def __init__(self) -> None:
        self.root = Path(sysconfig.get_path("stdlib"))
        self._sources: dict[str, _Source | None] = {}
        self._extensions: dict[str, ModuleType | None] = {}
        self._namespaces: dict[str, dict[str, _Entry]] = {}
        self._in_progress: set[str] = set()

    # ---- locating

    def source_path(self, name: str) -> Path | None:
        parts = name.split(".")
        if not all(part.isidentifier() for part in parts):
            return None
        base = self.root.joinpath(*parts)
        for candidate in (base / "__init__.py", base.with_name(parts[-1] + ".py")):
            if candidate.is_file():
                return candidate
        return None

    def is_package(self, name: str) -> bool:
        path = self.source_path(name)
        return path is not None and path.name == "__init__.py"

    def source(self, name: str) -> _Source | None:
        """The parsed source of ``name``; None without a (parsable) source."""
        if name not in self._sources:
            path = self.source_path(name)
            source = None
            if path is not None:
                try:
                    source = _summarize(ast.parse(_read_source(path), filename=str(path)))
                except (OSError, SyntaxError, ValueError, RecursionError, MemoryError) as exc:
                    _log.debug("cannot parse %s: %r", path, exc)
            self._sources[name] = source
        return self._sources[name]

    def extension(self, name: str) -> ModuleType | None:
        """A built-in or extension module of the standard library (no Python source)."""
        if name not in self._extensions:
            module = None
            if self.source_path(name) is None:
                try:
                    module = _import_extension(name)
                except Exception as exc:  # ImportError, or anything the module init raises
                    _log.debug("cannot import %s: %r", name, exc)
            self._extensions[name] = module
        return self._extensions[name]

    # ---- documenting

    def module_doc(self, name: str) -> str | None:
        """The module docstring ("" when it has none); None when the module is unreadable."""
        source = self.source(name)
        if source is not None:
            return source.doc
        module = self.extension(name)
        if module is not None:
            return _own_doc(module)
        return None

    def public(self, name: str) -> dict[str, _Entry]:
        """The public API of ``name``: ``__all__`` when it is a literal, else every name
        without a leading underscore; names re-exported from private or implementation
        modules are documented here, names from other public modules in their own file."""
        namespace = self.namespace(name)
        source = self.source(name)
        names: list[str] | None
        if source is not None:
            names = source.exported
        else:
            exported = getattr(self.extension(name), "__all__", None)
            names = None
            if isinstance(exported, list | tuple):
                names = [n for n in exported if isinstance(n, str)]
        if names is None:
            return {n: e for n, e in namespace.items() if not n.startswith("_")}
        return {n: namespace[n] for n in names if n in namespace}

    def namespace(self, name: str) -> dict[str, _Entry]:
        """Every documented top-level binding of ``name``, private ones included."""
        if name in self._namespaces:
            return self._namespaces[name]
        if name in self._in_progress or len(self._in_progress) >= _MAX_FOLLOW_DEPTH:
            return {}  # an import cycle, or a chain too long to be documentation
        self._in_progress.add(name)
        try:
            source = self.source(name)
            if source is not None:
                result = self._source_namespace(name, source)
            else:
                module = self.extension(name)
                result = _object_namespace(module) if module is not None else {}
        finally:
            self._in_progress.discard(name)
        self._namespaces[name] = result
        return result

    def _source_namespace(self, name: str, source: _Source) -> dict[str, _Entry]:
        # Local definitions win over imports, whose modules are then only read (or, for
        # extension modules, imported) when a name is still missing.
        local, exported = source.local, source.exported
        # With a literal __all__ whose every name is defined here, star imports add nothing
        # (typically ``from _accelerator import *`` over pure-Python definitions).
        stars_needed = exported is None or any(n not in local for n in exported)

        imported: dict[str, _Entry] = {}
        modules: dict[str, str] = {}  # local names bound to modules, for ``x = _mod.x``

        def follow(module: str, attr: str, bound: str) -> None:
            if bound in local or bound in imported or not self._followable(module):
                return
            if bound.startswith("_") and (exported is None or bound not in exported):
                return  # private here too: never documented, so never looked up
            found = self.namespace(module).get(attr)
            if found is not None:
                imported[bound] = replace(found, name=bound)

        for stmt in source.bindings:
            if isinstance(stmt, ast.Import):
                for alias in stmt.names:
                    if alias.asname or "." not in alias.name:
                        modules[alias.asname or alias.name] = alias.name
            elif isinstance(stmt, ast.ImportFrom):
                origin = _resolve_import(name, self.is_package(name), stmt)
                if origin is None:
                    continue
                for alias in stmt.names:
                    bound = alias.asname or alias.name
                    if alias.name == "*":
                        if stars_needed and self._followable(origin):
                            for n, entry in self.public(origin).items():
                                imported.setdefault(n, entry)
                    elif self.source_path(f"{origin}.{alias.name}") is not None:
                        modules[bound] = f"{origin}.{alias.name}"  # a submodule
                    else:
                        follow(origin, alias.name, bound)
            elif (
                isinstance(stmt, ast.Assign)
                and len(stmt.targets) == 1
                and isinstance(target := stmt.targets[0], ast.Name)
                and isinstance(value := stmt.value, ast.Attribute)
                and isinstance(value.value, ast.Name)
                and (module := modules.get(value.value.id)) is not None
            ):
                follow(module, value.attr, target.id)
        result = dict(local)
        for bound, entry in imported.items():
            result.setdefault(bound, entry)
        return result

    def _followable(self, module: str) -> bool:
        """Re-exports are followed only into modules that get no file of their own."""
        parts = module.split(".")
        private = any(p.startswith("_") for p in parts) or parts[0] in _IMPLEMENTATION
        return private and (self.source_path(module) is not None or _is_extension(module))


def _summarize(tree: ast.Module) -> _Source:
    local: dict[str, _Entry] = {}
    bindings: list[ast.stmt] = []
    for stmt in _flatten(tree.body):
        if isinstance(stmt, ast.ClassDef):
            local.setdefault(stmt.name, _class_entry(stmt))
        elif isinstance(stmt, _FunctionNode):
            local.setdefault(stmt.name, _function_entry(stmt, method=False))
        elif isinstance(stmt, ast.Import | ast.ImportFrom) or (
            isinstance(stmt, ast.Assign) and isinstance(stmt.value, ast.Attribute)
        ):
            bindings.append(stmt)
    return _Source(ast.get_docstring(tree) or "", _literal_all(tree), local, tuple(bindings))


def _read_source(path: Path) -> bytes:
    return path.read_bytes()


def _is_extension(name: str) -> bool:
    """Whether ``name`` is a built-in or extension module of this Python (never imports)."""
    if "." in name or name in _NO_IMPORT:
        return False
    if name in sys.builtin_module_names:
        return True
    spec = find_spec(name)  # for a top-level name this imports nothing
    return (
        spec is not None
        and isinstance(spec.loader, ExtensionFileLoader)
        and _is_stdlib_file(spec.origin)
    )


def _import_extension(name: str) -> ModuleType | None:
    """Imports a top-level built-in or extension module that belongs to this Python."""
    if not _is_extension(name):
        return None
    module = import_module(name)
    spec = getattr(module, "__spec__", None)
    origin = getattr(spec, "origin", None)
    if origin == "built-in" or (
        isinstance(getattr(spec, "loader", None), ExtensionFileLoader) and _is_stdlib_file(origin)
    ):
        return module
    return None


def _is_stdlib_file(origin: object) -> bool:
    if not isinstance(origin, str):
        return False
    path = Path(origin).resolve()
    if {"site-packages", "dist-packages"} & set(path.parts):
        return False
    roots = {Path(sys.base_prefix).resolve(), Path(sys.base_exec_prefix).resolve()}
    return any(path.is_relative_to(root) for root in roots)


def _flatten(body: Sequence[ast.stmt]) -> Iterator[ast.stmt]:
    """Statements run at the top level of a body, including inside ``if`` and ``try``
    (platform and fallback definitions), but not inside functions or classes."""
    for stmt in body:
        if isinstance(stmt, ast.If):
            yield from _flatten(stmt.body)
            yield from _flatten(stmt.orelse)
        elif isinstance(stmt, _TRY_NODES):  # ast.Try or ast.TryStar, same fields
            handlers: list[ast.ExceptHandler] = getattr(stmt, "handlers", [])
            yield from _flatten(getattr(stmt, "body", []))
            for handler in handlers:
                yield from _flatten(handler.body)
            yield from _flatten(getattr(stmt, "orelse", []))
            yield from _flatten(getattr(stmt, "finalbody", []))
        else:
            yield stmt


def _literal_all(tree: ast.Module) -> list[str] | None:
    """``__all__`` when every assignment to it is a literal list of strings, else None."""
    names: list[str] | None = None
    for stmt in _flatten(tree.body):
        value: ast.expr | None = None
        extend = False
        if isinstance(stmt, ast.Assign | ast.AnnAssign):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            if not any(_mentions_all(t) for t in targets):
                continue
            if not (len(targets) == 1 and isinstance(targets[0], ast.Name)):
                return None
            value = stmt.value
        elif isinstance(stmt, ast.AugAssign) and _mentions_all(stmt.target):
            if not isinstance(stmt.op, ast.Add):
                return None
            value, extend = stmt.value, True
        elif (
            isinstance(stmt, ast.Expr)
            and isinstance(call := stmt.value, ast.Call)
            and isinstance(func := call.func, ast.Attribute)
            and _mentions_all(func.value)
        ):
            if func.attr not in ("extend", "append") or len(call.args) != 1:
                return None
            arg = call.args[0]
            value = ast.List(elts=[arg], ctx=ast.Load()) if func.attr == "append" else arg
            extend = True
        else:
            continue
        found = _literal_strings(value)
        if found is None or (extend and names is None):
            return None
        names = [*names, *found] if extend and names is not None else found
    return list(dict.fromkeys(names)) if names is not None else None


def _mentions_all(node: ast.expr) -> bool:
    return any(isinstance(n, ast.Name) and n.id == "__all__" for n in ast.walk(node))


def _literal_strings(node: ast.expr | None) -> list[str] | None:
    if node is None:
        return None
    try:
        value = ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return list(value)
    return None


def _resolve_import(module: str, is_package: bool, stmt: ast.ImportFrom) -> str | None:
    """The absolute name of the module a ``from ... import`` reads from."""
    if not stmt.level:
        return stmt.module
    package = module.split(".") if is_package else module.split(".")[:-1]
    up = stmt.level - 1
    if up >= len(package):
        return None  # beyond the top-level package
    base = package[: len(package) - up]
    return ".".join([*base, stmt.module]) if stmt.module else ".".join(base)


def _function_entry(node: _FunctionNode, *, method: bool) -> _Entry:
    decorators = {_decorator_name(d) for d in node.decorator_list}
    doc = ast.get_docstring(node) or ""
    if method and decorators & _PROPERTY_DECORATORS:
        return _Entry(node.name, "property", "", doc)
    signature = _format_arguments(node.args, drop_first=method and "staticmethod" not in decorators)
    if node.returns is not None:
        signature += f" -> {ast.unparse(node.returns)}"
    kind = "async def" if isinstance(node, ast.AsyncFunctionDef) else "def"
    return _Entry(node.name, kind, signature, doc)


def _class_entry(node: ast.ClassDef) -> _Entry:
    init: _FunctionNode | None = None
    methods: dict[str, _Entry] = {}
    for stmt in _flatten(node.body):
        if not isinstance(stmt, _FunctionNode):
            continue
        if stmt.name == "__init__" and init is None:
            init = stmt
        if not stmt.name.startswith("_") and stmt.name not in methods:
            methods[stmt.name] = _function_entry(stmt, method=True)
    bases = tuple(ast.unparse(b) for b in node.bases if ast.unparse(b) != "object") + tuple(
        f"{k.arg}={ast.unparse(k.value)}" if k.arg else f"**{ast.unparse(k.value)}"
        for k in node.keywords
    )
    signature = _format_arguments(init.args, drop_first=True) if init is not None else ""
    return _Entry(
        node.name, "class", signature, ast.get_docstring(node) or "", bases, tuple(methods.values())
    )


def _decorator_name(node: ast.expr) -> str:
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    return ""


def _format_arguments(args: ast.arguments, *, drop_first: bool) -> str:
    posonly, regular, defaults = list(args.posonlyargs), list(args.args), list(args.defaults)
    if drop_first and (posonly or regular):
        if len(defaults) == len(posonly) + len(regular):
            defaults = defaults[1:]  # the dropped self/cls had a default too
        if posonly:
            posonly = posonly[1:]
        else:
            regular = regular[1:]
    trimmed = ast.arguments(
        posonlyargs=posonly,
        args=regular,
        vararg=args.vararg,
        kwonlyargs=args.kwonlyargs,
        kw_defaults=args.kw_defaults,
        kwarg=args.kwarg,
        defaults=defaults,
    )
    return f"({ast.unparse(trimmed)})"


def _own_doc(obj: object) -> str:
    doc = obj.__dict__.get("__doc__") if isinstance(obj, type) else getattr(obj, "__doc__", None)
    return inspect.cleandoc(doc) if isinstance(doc, str) else ""


def _object_namespace(module: ModuleType) -> dict[str, _Entry]:
    """The classes and routines of an extension module, sorted by name."""
    result: dict[str, _Entry] = {}
    namespace = vars(module)
    for name, current in sorted(namespace.items()):
        # sys keeps the originals of the hooks a program may replace (sys.excepthook,
        # sys.unraisablehook, ...) as __excepthook__, ...: document those, not whatever
        # this process installed (a test runner's hook, say).
        original = namespace.get(f"__{name}__")
        obj = original if inspect.isroutine(original) else current
        if inspect.isfunction(obj) or inspect.ismethod(obj):
            continue  # Python code stored in a C module's namespace at run time
        try:
            entry = _object_entry(name, obj)
        except Exception as exc:
            _log.debug("skipping %s.%s: %r", module.__name__, name, exc)
            continue
        if entry is not None:
            result[name] = entry
    return result


def _object_entry(name: str, obj: object) -> _Entry | None:
    if inspect.isclass(obj):
        methods: list[_Entry] = []
        for member_name, member in sorted(vars(obj).items()):
            if member_name.startswith("_"):
                continue
            if inspect.isroutine(member):
                bound = getattr(obj, member_name, member)
                methods.append(
                    _Entry(member_name, "def", _signature(bound, method=True), _own_doc(member))
                )
            elif inspect.isdatadescriptor(member) and _own_doc(member):
                methods.append(_Entry(member_name, "property", "", _own_doc(member)))
        bases = tuple(
            b.__qualname__ if b.__module__ == "builtins" else f"{b.__module__}.{b.__qualname__}"
            for b in obj.__bases__
            if b is not object
        )
        return _Entry(name, "class", _signature(obj), _own_doc(obj), bases, tuple(methods))
    if inspect.isroutine(obj):
        return _Entry(name, "def", _signature(obj), _own_doc(obj))
    return None


def _signature(obj: object, *, method: bool = False) -> str:
    try:
        signature = inspect.signature(obj)  # type: ignore[arg-type]
    except Exception:  # no text signature (ValueError), not introspectable (TypeError), ...
        return ""
    params = list(signature.parameters.values())
    if method and params and params[0].name == "self":
        signature = signature.replace(parameters=params[1:])
    return _ADDRESS.sub("", str(signature))
