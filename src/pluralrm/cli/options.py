"""Command-line options derived from the config dataclasses, so a setting is declared once.

A setting lives in :mod:`pluralrm.config` as a dataclass field: its name, type, default and help string.
:func:`config_options` turns fields of such a config into a verb's Typer options and hands the verb the
config object built from what was parsed, so adding a setting to a verb is one edit (the field; plus its
name in ``names`` when the verb exposes only some of a config)::

    @app.command()
    @config_options(CUSTOMIZE)          # every CustomizeConfig field: --epochs, --lora/--no-lora, …
    def customize(data: ..., *, config: CustomizeConfig, verbose: ... = False) -> None:
        customize_reward_model(..., config=config)

    @app.command()
    @config_options(FEATURIZE, "backbone", "device", into="featurize")   # some fields of a config
    @config_options(DECOMPOSE, "n_components", "seed", flags={"n_components": "--components"})
    def kshot(..., *, featurize: FeaturizeConfig, config: DecomposeConfig) -> None: ...

The option's flag is the field name with dashes (``--max-new-tokens``; a bool gets ``--x/--no-x``) unless
``flags`` names others, its default is the field's value *in the instance passed* (so ``DEMO_DECOMPOSE``
gives the demo its own defaults) and its help is the field's ``metadata["help"]``. A tuple field is a
comma-separated option (``--ns 1,2,4``). The parameter ``into`` (default ``config``) disappears from the
verb's command line; the other fields of the config keep the instance's values.

Every verb declares its settings this way; ``tests/test_config.py`` checks every derived option against
its field.
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import fields, replace
from typing import Annotated, Any

from pluralrm.cli.common import config_option, fail

#: Attribute of a decorated verb: ``{option parameter: (config instance it derives from, field name)}``.
DERIVED = "__pluralrm_config_options__"


def config_options(
    base: Any,
    *names: str,
    into: str = "config",
    exclude: Iterable[str] = (),
    flags: Mapping[str, str | tuple[str, ...]] | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A decorator exposing fields ``names`` (default: all but ``exclude``) of the config instance ``base``
    as options of a Typer verb, which receives ``replace(base, **parsed)`` as its parameter ``into``."""
    config_type = type(base)
    known = [f.name for f in fields(config_type)]
    chosen = list(names) or [name for name in known if name not in set(exclude)]
    unknown = sorted(set(chosen) - set(known) | set(exclude) - set(known))
    if unknown:
        raise ValueError(f"{config_type.__name__} has no field(s) {unknown}")
    hints = typing.get_type_hints(config_type)
    flags = dict(flags or {})

    def decorate(verb: Callable[..., Any]) -> Callable[..., Any]:
        signature = inspect.signature(verb, eval_str=True)
        parameters = list(signature.parameters.values())
        positions = [i for i, p in enumerate(parameters) if p.name == into]
        if not positions or parameters[positions[0]].annotation is not config_type:
            raise TypeError(f"{verb.__name__} needs a parameter `{into}: {config_type.__name__}`")
        clashes = sorted(set(chosen) & {p.name for p in parameters})
        if clashes:
            raise TypeError(f"{verb.__name__}: option(s) {clashes} of {config_type.__name__} already exist")
        derived = [_parameter(base, name, hints[name], flags.get(name, ())) for name in chosen]
        at = positions[0]
        # Keyword-only: Typer calls a verb with keywords, and keyword-only parameters need no default order.
        new = [p.replace(kind=p.KEYWORD_ONLY) for p in (*parameters[:at], *derived, *parameters[at + 1 :])]

        @functools.wraps(verb)
        def wrapper(**kwargs: Any) -> Any:
            values = {name: _parsed(kwargs.pop(name), hints[name], name, flags) for name in chosen}
            return verb(**kwargs, **{into: replace(base, **values)})

        wrapper.__signature__ = signature.replace(parameters=new)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in new}
        origins = {**getattr(verb, DERIVED, {}), **{name: (base, name) for name in chosen}}
        setattr(wrapper, DERIVED, origins)
        return wrapper

    return decorate


def _parameter(base: Any, name: str, hint: Any, flag: str | tuple[str, ...]) -> inspect.Parameter:
    """The verb parameter of one field: its annotated type, its option and the instance's value."""
    default = getattr(base, name)
    cli_type = hint
    if _tuple_item(hint) is not None:
        cli_type = str | None if default is None else str
        default = None if default is None else ",".join(str(v) for v in default)
    flags = (flag,) if isinstance(flag, str) else tuple(flag)
    option = config_option(type(base), name, *flags)
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=Annotated[cli_type, option]
    )


def _tuple_item(hint: Any) -> type | None:
    """``int`` for ``tuple[int, ...]`` or ``tuple[int, ...] | None``; None for other types."""
    candidates = [hint, *typing.get_args(hint)] if typing.get_origin(hint) is not tuple else [hint]
    for candidate in candidates:
        if typing.get_origin(candidate) is tuple:
            return typing.get_args(candidate)[0]
    return None


def _parsed(value: Any, hint: Any, name: str, flags: Mapping[str, Any]) -> Any:
    """A tuple field's comma-separated text as the tuple; any other value as Typer parsed it."""
    item = _tuple_item(hint)
    if item is None or value is None:
        return value
    try:
        return tuple(item(part.strip()) for part in value.split(",") if part.strip())
    except ValueError:
        given = flags.get(name) or "--" + name.replace("_", "-")
        flag = given if isinstance(given, str) else given[0]
        raise fail(f"{flag} {value!r}: expected comma-separated {item.__name__} values") from None
