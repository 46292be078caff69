"""Sphinx configuration for the asgisession docs site.

Build it (what ``./scripts/test`` and ``tox -e docs`` run)::

    sphinx-build -W --keep-going -n -b html docs <output dir>

``-W`` turns every warning into a failure and ``-n`` (nitpicky) warns on every cross-reference
that does not resolve, so a renamed class or a broken link fails the build.
"""

from __future__ import annotations

import importlib
import re
from typing import Any

from docutils import nodes
from sphinx.addnodes import pending_xref
from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment
from sphinx.util import logging

from asgisession import __all__ as PUBLIC_NAMES
from asgisession import __version__
from asgisession.stores import __all__ as STORE_NAMES

project = "asgisession"
author = "asgisession developers"
copyright = "asgisession developers"
version = release = __version__

extensions = ["myst_parser", "sphinx.ext.autodoc"]
source_suffix = {".md": "markdown"}
root_doc = "index"
# conf.py is not a page; build output may land under docs/ when someone builds in place.
exclude_patterns = ["_build"]

# Markdown: "[text](security.md#rotation)" needs anchors for headings; ":::" fences and
# definition lists read well in Markdown source.
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence", "deflist"]

html_theme = "furo"
html_title = f"asgisession {release}"
html_static_path: list[str] = []

# The API reference shows the names as users import them, and types as written.
python_use_unqualified_type_names = True
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_preserve_defaults = True
autodoc_default_options = {"members": True}
# Keep the alias names in signatures (api.md documents them) rather than their expansions.
autodoc_type_aliases = {
    name: f"asgisession._types.{name}"
    for name in ("Scope", "Message", "Receive", "Send", "ASGIApp")
} | {
    "SecretKeyBase": "asgisession.crypto.SecretKeyBase",
    "SameSite": "asgisession.cookies.SameSite",
}

# There is no network in CI, so no intersphinx: references into the standard library and
# the store clients' and frameworks' packages have no target. They are named in signatures
# only, so they are let through by module; anything under asgisession must resolve.
nitpick_ignore_regex = [
    (r"py:.*", r"(collections\.abc|typing|typing_extensions|types|enum|datetime|os)\..*"),
    (r"py:.*", r"(redis|aiomcache|aiosqlite|asyncpg|sqlite3|cryptography)\..*"),
    # The frameworks the adapters in asgisession.integrations plug into.
    (r"py:.*", r"(fastapi|starlette|litestar|quart|flask|werkzeug|django)\..*"),
    (r"py:class", r"(int|str|bytes|float|bool|object|None|Exception|ValueError)"),
    (r"py:class", r"(TypeError|RuntimeError|dict|list|tuple|set|frozenset|type)"),
    (r"py:class", r"collections\.Counter"),
    # What the middleware builds for the jar; users get a jar from cookies(scope).
    (r"py:class", r"asgisession\.jar\.JarCodecs"),
]


def _public_module_of(name: str) -> str | None:
    if name in STORE_NAMES:
        return "asgisession.stores"
    if name in PUBLIC_NAMES:
        return "asgisession"
    return None


def resolve_defining_module(
    app: Sphinx, env: BuildEnvironment, node: pending_xref, contnode: nodes.TextElement
) -> nodes.Element | None:
    """Send ``asgisession.<module>.<Name>`` to where the reference documents ``<Name>``.

    Docstrings and signatures name classes by their defining module
    (``asgisession.session.Session``), while the reference documents them where users import
    them (``asgisession.Session``, ``asgisession.stores.RedisStore``).
    """
    target = node.get("reftarget", "")
    if node.get("refdomain") != "py":
        return None
    domain = env.domains["py"]
    if not target.startswith("asgisession."):
        # A short name in a docstring (":class:`StoreUnavailable`") that is not defined in
        # the docstring's own module: accept it when exactly one documented object has it.
        if node.get("refspecific") or "[" in target:
            return None
        node["refspecific"] = True
        return domain.resolve_xref(
            env, node["refdoc"], app.builder, node["reftype"], target, node, contnode
        )
    parts = target.split(".")
    # "asgisession.session.Session" or "asgisession.session.Session.regenerate"
    for split in range(2, len(parts)):
        module, owner = ".".join(parts[:split]), parts[split]
        public = _public_module_of(owner)
        if public is None or module == public or not _defines(module, owner):
            continue
        node["reftarget"] = ".".join([public, *parts[split:]])
        return domain.resolve_xref(
            env, node["refdoc"], app.builder, node["reftype"], node["reftarget"], node, contnode
        )
    return None


def _defines(module_name: str, name: str) -> bool:
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return False
    return getattr(module, name, None) is not None


_FORWARD_REF = re.compile(r"TypeAliasForwardRef\('([^']+)'\)")


def unwrap_alias_refs(
    app: Sphinx,
    what: str,
    name: str,
    obj: object,
    options: object,
    signature: str | None,
    return_annotation: str | None,
) -> tuple[str | None, str | None]:
    """Show ``Scope`` where autodoc leaves ``TypeAliasForwardRef('...Scope')``.

    autodoc does that for an alias from ``autodoc_type_aliases`` nested in ``Callable[[...]]``.
    """

    def unwrap(text: str | None) -> str | None:
        return None if text is None else _FORWARD_REF.sub(r"\1", text)

    return unwrap(signature), unwrap(return_annotation)


def check_public_names_documented(app: Sphinx, env: BuildEnvironment) -> None:
    """Warn (so ``-W`` fails the build) when a public name is missing from api.md."""
    documented = env.domains["py"].objects
    expected = [f"asgisession.{name}" for name in PUBLIC_NAMES if name != "__version__"]
    expected += [f"asgisession.stores.{name}" for name in STORE_NAMES]
    for name in expected:
        if name not in documented:
            logging.getLogger(__name__).warning(
                "%s is public (in __all__) but not in the API reference: add it to docs/api.md",
                name,
            )


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("env-check-consistency", check_public_names_documented)
    app.connect("missing-reference", resolve_defining_module)
    app.connect("autodoc-process-signature", unwrap_alias_refs)
    return {"parallel_read_safe": True}
