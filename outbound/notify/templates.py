"""Notification templates: Jinja2, one file per kind, part and locale.

Files are named ``<locale>/<kind>.<part>`` (``en-US/activation_token.html``). An analysts'
folder (``notifications.templates_folder``) is searched first, then the shipped templates,
so a site overrides one file at a time or adds a whole locale.

HTML parts are autoescaped: a value such as a username can never become markup. Plain-text
parts (subject, text body, SMS) are not escaped, because they are never read as HTML. The
environment is sandboxed, since analysts' templates should not reach Python internals, and
undefined values are errors, so a misspelt variable fails ``config check`` instead of
rendering as nothing.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from jinja2 import (
    BaseLoader,
    ChoiceLoader,
    FileSystemLoader,
    PackageLoader,
    StrictUndefined,
    TemplateError,
    TemplateNotFound,
    select_autoescape,
)
from jinja2.sandbox import ImmutableSandboxedEnvironment

__all__ = ["TemplateSet", "template_name"]


def template_name(locale: str, kind: str, part: str) -> str:
    """The file name of one template: ``en-US/activation_token.html``."""
    return f"{locale}/{kind}.{part}"


class _Environment(ImmutableSandboxedEnvironment):
    """Resolves ``{% extends "_layout.html" %}`` beside the template that says it."""

    def join_path(self, template: str, parent: str) -> str:
        if template.startswith("/"):
            return template.lstrip("/")
        return posixpath.join(posixpath.dirname(parent), template)


class TemplateSet:
    """The templates of one site: an analysts' folder over the shipped ones, compiled once."""

    def __init__(self, folder: Path | None = None,
                 filters: Mapping[str, Callable[..., Any]] | None = None) -> None:
        loaders: list[BaseLoader] = [FileSystemLoader(folder)] if folder else []
        loaders.append(PackageLoader("outbound.notify", "templates"))
        self.folder = folder
        # auto_reload off: a notifier renders thousands of messages a minute and templates
        # change with a restart, like routing.yaml.
        self._env = _Environment(
            loader=ChoiceLoader(loaders), undefined=StrictUndefined, auto_reload=False,
            autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False,
                                         default=False),
            trim_blocks=True, lstrip_blocks=True, cache_size=-1)
        self._env.filters.update(filters or {})

    def has(self, locale: str, kind: str, part: str) -> bool:
        """Whether a template exists for this locale, kind and part."""
        try:
            self._env.get_template(template_name(locale, kind, part))
        except TemplateNotFound:
            return False
        return True

    def render(self, locale: str, kind: str, part: str, context: Mapping[str, Any]) -> str:
        """Render one template; ``TemplateNotFound`` and other ``TemplateError``\\ s propagate."""
        return self._env.get_template(template_name(locale, kind, part)).render(context)

    def problem(self, locale: str, kind: str, part: str, context: Mapping[str, Any]) -> str | None:
        """Why this template does not render with ``context``, or None when it does."""
        name = template_name(locale, kind, part)
        try:
            self.render(locale, kind, part, context)
        except TemplateNotFound:
            return f"{name}: no such template"
        except TemplateError as exc:
            return f"{name}: {describe_template_error(exc)}"
        return None


def describe_template_error(exc: TemplateError) -> str:
    """A template error in one line, with the template's line number when it is known.

    Syntax errors carry it; errors while rendering (an undefined value) are found in the
    traceback, where Jinja puts the template's own file and line in place of its code.
    """
    line = getattr(exc, "lineno", None) or _template_line(exc)
    where = f"line {line}: " if line else ""
    return f"{where}{exc.message or type(exc).__name__}"


def _template_line(exc: BaseException) -> int | None:
    line = None
    trace = exc.__traceback__
    while trace is not None:
        if "__jinja_exception__" in trace.tb_frame.f_globals:  # a frame Jinja rewrote
            line = trace.tb_lineno
        trace = trace.tb_next
    return line
