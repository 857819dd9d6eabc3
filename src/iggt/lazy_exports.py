"""Package attributes imported on first use, so importing a package stays light (PEP 562)."""

from importlib import import_module


def lazy_getattr(package: str, sources: dict[str, str]):
    """A module ``__getattr__`` for ``package`` that imports ``name`` from module ``sources[name]``."""

    def __getattr__(name: str):
        if name in sources:
            return getattr(import_module(sources[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
