"""The click classes under `rosetta`: workspace defaults as default_map, the resolved command, quiet flags.

- `RosettaGroup` opens the workspace `Session` once, after the global options are parsed, and
  keeps it in `ctx.obj` for every command.
- `StageCommand` (the class of every command registered on `app`) turns the session's defaults
  into this command's `default_map` before its options are parsed, records the resolved command
  (from the parsed parameters, not argv) in provenance while it runs, and registers its output
  under its role when it succeeds.
- Flags (`--json`, `--resume`, ...) take no value, so their help shows no type.
"""

from __future__ import annotations

from enum import Enum

import typer
from typer.core import TyperCommand, TyperGroup

GIVEN = ("COMMANDLINE", "ENVIRONMENT", "DEFAULT_MAP")  # parameter sources a retyped command must spell out


def _quiet_flags(cmd, ctx) -> None:
    """Tidy the help of `cmd` and its subcommands, once (click caches the help option, so this lasts):
    - flags (and --help) get an empty metavar, so the help's type column stays blank for them;
    - an argument shows its name (STORE, SRCS...) and a repeatable option its item type (<path>),
      not typer's internal `{store}` or `<list[Path]>`;
    - docstring paragraphs are reflowed (`reflow`), so no sentence breaks mid-line."""
    helper = cmd.get_help_option(ctx) if hasattr(cmd, "get_help_option") else None
    for p in [*getattr(cmd, "params", ()), *([helper] if helper is not None else [])]:
        if getattr(p, "is_flag", False) and p.metavar is None:
            p.metavar = ""
        elif p.metavar is None and p.param_type_name == "argument":
            _plain_argument(p)
        elif p.metavar is None and getattr(p, "multiple", False):
            p.metavar = f"<{_item_type(p)}>"
    for p in getattr(cmd, "params", ()):
        if getattr(p, "help", None) and not getattr(p, "_escaped", False):
            p.help, p._escaped = escape(p.help), True
    if getattr(cmd, "help", None) and not getattr(cmd, "_reflowed", False):
        cmd.help, cmd._reflowed = escape(reflow(cmd.help)), True
        if cmd.short_help is None:  # the command list shows one sentence, not the whole first paragraph
            first = cmd.help.split("\n\n")[0]
            cmd.short_help = first.split(". ")[0].rstrip(".") + "."
    for sub in getattr(cmd, "commands", {}).values():
        _quiet_flags(sub, ctx)


def _plain_argument(p) -> None:
    """Usage `rosetta store merge [OPTIONS] SRCS...` and type <path>, as the docs write them (typer's
    own are `{srcs}...` and <list[Path]>). Instance attributes: typer has no setting for these."""
    name = p.name.upper() + ("..." if p.nargs != 1 else "")
    p.metavar = name
    p._usage_display_name = lambda: name if p.required else f"[{name}]"
    item = f"<{_item_type(p)}>"
    p.display_type_rich = lambda ctx: item


def _item_type(p) -> str:
    """The word typer shows for one value of a repeatable option (path, str, int), from its annotation."""
    from typing import get_args

    ann = getattr(getattr(p, "type_descriptor", None), "annotation", None)
    item = (get_args(ann) or (ann,))[0]
    return getattr(item, "__name__", "value").lower()


def escape(text: str) -> str:
    """Help is rendered as Rich markup, which would swallow a literal `[start, end]` as a tag."""
    from rich.markup import escape as rich_escape

    return rich_escape(text)


def reflow(text: str) -> str:
    """Join the hard-wrapped lines of each docstring paragraph into one line (the help renderer keeps
    single newlines, so a source line break would show mid-sentence). Paragraphs are separated by blank
    lines; indented lines (examples, commands) and list items keep their own lines."""
    out = []
    for para in text.split("\n\n"):
        lines = para.split("\n")
        keep = [ln for ln in lines if ln.startswith((" ", "\t", "- ", "* ", "• ")) or ln[:2].rstrip(")").isdigit()]
        out.append(para if keep else " ".join(ln.strip() for ln in lines if ln.strip()))
    return "\n\n".join(out)


class RosettaGroup(TyperGroup):
    def parse_args(self, ctx, args):
        from rosetta_cli.workspace.resolve import Session

        rest = super().parse_args(ctx, args)
        if ctx.obj is None:
            ctx.obj = Session.open(ctx.params.get("workspace"))
        return rest

    def get_params(self, ctx):
        _quiet_flags(self, ctx)
        return super().get_params(ctx)

    def get_command(self, ctx, cmd_name):
        cmd = super().get_command(ctx, cmd_name)
        if cmd is not None:
            _quiet_flags(cmd, ctx)
        return cmd


def _session(ctx):
    from rosetta_cli.workspace.resolve import Session

    return ctx.find_object(Session)


def _listed(v):
    def as_list(x):
        return x if x is None or isinstance(x, (list, tuple)) else [x]
    return (lambda: as_list(v())) if callable(v) else as_list(v)


def param_getter(ctx):
    """name → the value this invocation gives it: parsed already, else its default (default_map first)."""
    by_name = {p.name: p for p in ctx.command.params}

    def get(name: str):
        if name in ctx.params:
            return ctx.params[name]
        p = by_name.get(name)
        return None if p is None else p.get_default(ctx)
    return get


class StageCommand(TyperCommand):
    def parse_args(self, ctx, args):
        session = _session(ctx)
        if session is not None:
            flags = {o: p.name for p in self.params for o in p.opts if o.startswith("--")}
            defaults = session.defaults(ctx.info_name, flags, param_getter(ctx))
            for p in self.params:  # a repeatable option's default is a list (a workspace role is one path)
                if getattr(p, "multiple", False) and p.name in defaults:
                    defaults[p.name] = _listed(defaults[p.name])
            ctx.default_map = {**(ctx.default_map or {}), **defaults}
        return super().parse_args(ctx, args)

    def invoke(self, ctx):
        from rosetta_cli import provenance
        from rosetta_cli.errors import Interrupted, RosettaError

        import logging
        import time

        session = _session(ctx)
        argv, log, t0 = resolved_argv(ctx), logging.getLogger("rosetta"), time.perf_counter()
        log.debug("running: %s", " ".join(argv))
        with provenance.recording(argv):
            try:
                rv = super().invoke(ctx)
            except KeyboardInterrupt:
                # typer would turn it into Exit(130), which standalone_mode=False returns as a value
                raise Interrupted(f"{ctx.info_name} interrupted",
                                  hint="rerun the same command: stages that resume continue where they stopped; "
                                  "one that cannot will ask for --overwrite") from None
            except RosettaError as e:
                if session is not None and e.exit_code == 3:  # finished with some failed rows: the output exists
                    session.register(ctx.info_name, param_getter(ctx))
                raise
        if session is not None:
            session.register(ctx.info_name, param_getter(ctx))
        log.debug("%s finished in %.1f s", ctx.command_path, time.perf_counter() - t0)
        return rv


class RosettaTyper(typer.Typer):
    """typer.Typer whose commands are StageCommands."""

    def command(self, *args, cls=None, **kwargs):
        return super().command(*args, cls=cls or StageCommand, **kwargs)


def resolved_argv(ctx) -> list[str]:
    """The command as the user could retype it: explicit options plus those the workspace filled in."""
    argv = ctx.command_path.split()
    for p in ctx.command.params:
        if not p.expose_value or p.name not in ctx.params:
            continue
        src = ctx.get_parameter_source(p.name)
        if src is not None and src.name in GIVEN:
            argv += _render(p, ctx.params[p.name])
    return argv


def _text(v) -> str:
    return str(v.value if isinstance(v, Enum) else v)


def _render(p, v) -> list[str]:
    if p.param_type_name == "argument":
        return [_text(x) for x in v] if isinstance(v, (list, tuple)) else ([] if v is None else [_text(v)])
    flag = next((o for o in p.opts if o.startswith("--")), p.opts[0])
    if p.is_flag:
        return [flag] if v else ([p.secondary_opts[0]] if p.secondary_opts else [])
    if v is None:
        return []
    if p.multiple:
        out = []
        for x in v:
            out += [flag, *map(_text, x)] if isinstance(x, (list, tuple)) else [flag, _text(x)]
        return out
    return [flag, *map(_text, v)] if isinstance(v, (list, tuple)) else [flag, _text(v)]
