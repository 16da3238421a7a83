"""The ``harmony`` command.

Bad input exits 2 with a message on stderr; an unexpected failure exits 1 with a short
message and the details in a log file. Never a traceback on the terminal.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sys
import tempfile
import time
import traceback
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.exc import DBAPIError, OperationalError

from harmony_matrix import __version__, config_check, running
from harmony_matrix.config import Config, load_config
from harmony_matrix.errors import HarmonyError, InvalidInput
from harmony_matrix.i18n import (
    Message,
    _,
    _n,
    any_of,
    available_languages,
    calendar_day,
    catalog,
    list_of,
    normalise_language,
)
from harmony_matrix.importers.assemblies_toml import parse_assemblies
from harmony_matrix.importers.members_csv import parse_members
from harmony_matrix.importers.report import OUTCOME_NAMES, ImportReport, Outcome, RowReport
from harmony_matrix.matrix_ids import check_matrix_id
from harmony_matrix.services import consensus, export, lookup, paper_votes, petitions, registry
from harmony_matrix.services.context import ServiceContext
from harmony_matrix.storage import migrations
from harmony_matrix.storage.database import read_only_url, sqlite_file
from harmony_matrix.storage.models import Role
from harmony_matrix.voting.ballot_csv import parse_ballots
from harmony_matrix.voting.star import tabulate

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2


class Output:
    """Writes translated messages to stdout and stderr in the operator's language."""

    def __init__(self, language: str) -> None:
        self.language = language

    def say(self, message: Message | str) -> None:
        print(message.render(self.language) if isinstance(message, Message) else message)

    def warn(self, message: Message | str) -> None:
        text = message.render(self.language) if isinstance(message, Message) else message
        print(text, file=sys.stderr)


def build_parser(language: str = "en") -> argparse.ArgumentParser:
    def t(message: Message) -> str:
        return message.render(language)

    def global_options(parser: argparse.ArgumentParser, default: object) -> None:
        parser.add_argument(
            "--config", type=Path, default=default, help=t(_("the harmony.toml file to read"))
        )
        parser.add_argument(
            "--database", default=default, help=t(_("database URL (overrides the config)"))
        )
        parser.add_argument(
            "--language", default=default, help=t(_("language of the messages, e.g. en or fr"))
        )

    # The global options work after the command too ("harmony quorum owg --language fr"):
    # each command repeats them, with no default so they never undo the ones given first.
    anywhere = argparse.ArgumentParser(add_help=False)
    global_options(anywhere, argparse.SUPPRESS)
    parser = argparse.ArgumentParser(
        prog="harmony",
        description=t(_("Harmony: decision-making by Consensus, as the constitution says.")),
    )
    parser.add_argument("--version", action="version", version=f"harmony {__version__}")
    global_options(parser, None)
    commands = _Commands(
        parser.add_subparsers(dest="command", required=True, metavar="COMMAND"), anywhere
    )

    db = commands.add_parser("db", help=t(_("database schema")))
    db_commands = _Commands(
        db.add_subparsers(dest="db_command", required=True, metavar="ACTION"), anywhere
    )
    db_commands.add_parser("upgrade", help=t(_("create or migrate the database")))
    db_commands.add_parser("status", help=t(_("show the schema revision")))
    backup = db_commands.add_parser("backup", help=t(_("copy a SQLite database to a new file")))
    backup.add_argument("file", type=Path)
    exporting = commands.add_parser("export", help=t(_("write the whole record as JSON")))
    exporting.add_argument("file", type=Path, nargs="?", help=t(_("a new file (default: stdout)")))
    importing = commands.add_parser("import", help=t(_("load an export into an empty database")))
    importing.add_argument("file", type=Path)

    members = commands.add_parser("members", help=t(_("the member register")))
    members_commands = _Commands(
        members.add_subparsers(dest="members_command", required=True, metavar="ACTION"), anywhere
    )
    members_import = members_commands.add_parser(
        "import", help=t(_("import people from a CSV file (a dry run unless --apply)"))
    )
    members_import.add_argument("file", type=Path)
    members_import.add_argument("--apply", action="store_true", help=t(_("write the changes")))
    members_import.add_argument(
        "--verbose", action="store_true", help=t(_("list unchanged rows too"))
    )
    end_role = members_commands.add_parser(
        "end-role", help=t(_("end a person's role, or membership, in an assembly on a date"))
    )
    end_role.add_argument("matrix_id", help=t(_("the person, e.g. @ana:matrix.org")))
    end_role.add_argument("assembly", help=t(_("the assembly's slug")))
    end_role.add_argument(
        "role", nargs="?", help=t(_("member, secretary or moderator (default: every role)"))
    )
    end_role.add_argument(
        "--on",
        metavar="YYYY-MM-DD",
        help=t(_("the first day without the role (default: now)")),
    )

    assemblies = commands.add_parser("assemblies", help=t(_("assemblies")))
    assemblies_commands = _Commands(
        assemblies.add_subparsers(dest="assemblies_command", required=True, metavar="ACTION"),
        anywhere,
    )
    assemblies_import = assemblies_commands.add_parser(
        "import", help=t(_("import assemblies from a TOML file (a dry run unless --apply)"))
    )
    assemblies_import.add_argument("file", type=Path)
    assemblies_import.add_argument("--apply", action="store_true", help=t(_("write the changes")))
    assemblies_import.add_argument(
        "--verbose", action="store_true", help=t(_("list unchanged entries too"))
    )
    assemblies_commands.add_parser(
        "list", help=t(_("every assembly with its slug and reference code"))
    )

    quorum = commands.add_parser("quorum", help=t(_("the quorum of an assembly's Moot")))
    quorum.add_argument("assembly", help=t(_("the assembly's slug, reference code or name")))

    petition = commands.add_parser("petition", help=t(_("Party Thing petitions")))
    petition_commands = _Commands(
        petition.add_subparsers(dest="petition_command", required=True, metavar="ACTION"), anywhere
    )
    status = petition_commands.add_parser("status", help=t(_("signatures and threshold")))
    status.add_argument("id", help=t(_("the petition's ID, e.g. P-3")))

    ballots = commands.add_parser("ballots", help=t(_("ballots")))
    ballots_commands = _Commands(
        ballots.add_subparsers(dest="ballots_command", required=True, metavar="ACTION"), anywhere
    )
    enter = ballots_commands.add_parser(
        "enter", help=t(_("count the paper ballots of a meeting's vote and record the outcome"))
    )
    enter.add_argument("meeting", help=t(_("the meeting's ID, e.g. M-12")))
    enter.add_argument(
        "file",
        type=Path,
        help=t(
            _(
                "a CSV file as harmony tally reads it: row 1 names the options in order, "
                "then one row per paper ballot"
            )
        ),
    )

    record = commands.add_parser("consensus", help=t(_("the record of consensus")))
    record.add_argument("assembly", nargs="?", help=t(_("only this assembly's decisions")))
    record.add_argument("--verify", action="store_true", help=t(_("check the hash chain")))
    record.add_argument(
        "--expect-head",
        metavar="HASH",
        help=t(_("with --verify: a head hash published earlier, which must still be there")),
    )
    record.add_argument(
        "--expect-count",
        metavar="N",
        type=int,
        help=t(_("with --verify: an entry count published earlier; fewer entries is an error")),
    )

    tally = commands.add_parser(
        "tally", help=t(_("count a CSV file of STAR ballots (one row per ballot)"))
    )
    tally.add_argument("file", type=Path, help=t(_("header row: the option names")))
    tally.add_argument("--format", choices=("json", "text"), default="json")

    commands.add_parser(
        "bot",
        help=t(_("run the Matrix bot ([matrix] settings) until Ctrl-C or SIGTERM")),
    )

    commands.add_parser(
        "web",
        help=t(_("run the web companion ([web] settings) until Ctrl-C or SIGTERM")),
    )

    run = commands.add_parser(
        "run",
        help=t(_("run the bot and the web companion until Ctrl-C or SIGTERM (production)")),
    )
    config_parser = commands.add_parser("config", help=t(_("the configuration")))
    config_commands = _Commands(
        config_parser.add_subparsers(dest="config_command", required=True, metavar="ACTION"),
        anywhere,
    )
    check = config_commands.add_parser(
        "check", help=t(_("check the configuration as a start would and show its settings"))
    )
    for parser_ in (run, check):
        parser_.add_argument(
            "--only", choices=("bot", "web"), help=t(_("only this part (default: both)"))
        )

    demo = commands.add_parser(
        "demo",
        help=t(_("run a whole demo party here (Synapse, bot, web) until Ctrl-C; in var/demo/")),
    )
    demo.add_argument("--reset", action="store_true", help=t(_("start a fresh party")))
    demo.add_argument(
        "--walkthrough",
        action="store_true",
        help=t(_("then have scripted members hold a whole Moot, from the call to the result")),
    )
    demo.add_argument(
        "--load-only",
        action="store_true",
        help=t(_("only load the demo party into the database (as with --database or --config)")),
    )
    return parser


#: argparse's own words. argparse translates them in the gettext domain "argparse",
#: which no catalog of ours fills; listed here, they are extracted into Harmony's catalogs
#: and :func:`translate_argparse` has argparse look them up there.
ARGPARSE_MESSAGES = (
    _("usage: "),
    _("positional arguments"),
    _("options"),
    _("show this help message and exit"),
    _("show program's version number and exit"),
    _("the following arguments are required: %s"),
    _("unrecognized arguments: %s"),
    _("invalid choice: %(value)r (choose from %(choices)s)"),
    _("%(prog)s: error: %(message)s\n"),
    _("argument %(argument_name)s: %(message)s"),
    _("expected one argument"),
    _("invalid %(type)s value: %(value)r"),
    _("ambiguous option: %(option)s could match %(matches)s"),
)


def translate_argparse(language: str) -> None:
    """Have argparse's usage, help and errors speak ``language`` (this process is one
    command in one language, so setting argparse's module-wide translator is safe)."""
    table = catalog(language)
    argparse._ = table.gettext  # type: ignore[attr-defined]
    argparse.ngettext = table.ngettext  # type: ignore[attr-defined]


class _Commands:
    """Sub-commands that each accept the global options as well."""

    def __init__(self, action: Any, anywhere: argparse.ArgumentParser) -> None:
        self.action = action
        self.anywhere = anywhere

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = self.action.add_parser(
            name, parents=[self.anywhere], **kwargs
        )
        return parser


#: The commands that only read: they open a SQLite file read-only.
READ_ONLY = {
    ("db", "status"),
    ("assemblies", "list"),
    ("quorum", None),
    ("petition", "status"),
    ("consensus", None),
    ("export", None),
}


def main(argv: Sequence[str] | None = None) -> int:
    # The language is needed before the full parser exists, for translated --help.
    early = argparse.ArgumentParser(add_help=False)
    early.add_argument("--language")
    requested = early.parse_known_args(argv)[0].language
    language = _operator_language(requested)
    if requested and normalise_language(requested.split(".")[0]) is None:
        Output(language).warn(
            _(
                "Harmony has no messages in “%(language)s”. Available: %(available)s.",
                language=requested,
                available=", ".join(available_languages()),
            )
        )
        return EXIT_BAD_INPUT
    translate_argparse(language)
    args = build_parser(language).parse_args(argv)
    output = Output(language)
    try:
        if args.command == "tally":  # needs no database and no configuration
            return _tally(args, output)
        config = _config(args)
        return asyncio.run(_dispatch(args, config, output))
    except HarmonyError as error:
        output.warn(error.message)
        return EXIT_BAD_INPUT
    except BrokenPipeError:
        # The reader went away (e.g. `harmony tally x.csv | head`): not an error of ours.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except (OperationalError, DBAPIError, OSError) as error:
        if isinstance(error, OSError) and not _is_connection_error(error):
            return _crash(output, error)
        output.warn(
            _(
                "Cannot use the database: %(reason)s. Check [database] url in the config "
                "or HARMONY_DATABASE__URL.",
                reason=_first_line(getattr(error, "orig", error)),
            )
        )
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        return 130
    except Exception as error:  # the promise: no traceback on the terminal
        return _crash(output, error)


def _first_line(error: BaseException) -> str:
    # Some drivers raise with no message at all (asyncpg's connect timeout).
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def _is_connection_error(error: OSError) -> bool:
    # socket.gaierror: a host name that does not resolve.
    return isinstance(error, ConnectionError | TimeoutError | socket.gaierror) or (
        error.errno in (111, 113)
    )


def _crash(output: Output, error: BaseException, part: str | None = None) -> int:
    handle, path = tempfile.mkstemp(prefix="harmony-error-", suffix=".log")
    with os.fdopen(handle, "w") as log:
        traceback.print_exception(error, file=log)
    if part is not None:
        output.warn(
            _(
                "The %(part)s part stopped unexpectedly (%(error)s), so the others were "
                "stopped too. The details are in %(path)s.",
                part=part,
                error=type(error).__name__,
                path=path,
            )
        )
        return EXIT_FAILURE
    output.warn(
        _(
            "Harmony failed unexpectedly (%(error)s). The details are in %(path)s; please "
            "send that file to the developers.",
            error=type(error).__name__,
            path=path,
        )
    )
    return EXIT_FAILURE


def _operator_language(requested: str | None) -> str:
    for candidate in (requested, os.environ.get("LANGUAGE"), os.environ.get("LANG")):
        if candidate:
            found = normalise_language(candidate.split(".")[0].split(":")[0])
            if found:
                return found
    return "en"


def _config(args: argparse.Namespace) -> Config:
    environ = dict(os.environ)
    if args.database:
        environ["HARMONY_DATABASE__URL"] = args.database
    if args.command == "demo" and "HARMONY_DATABASE__URL" not in environ and args.config is None:
        environ["HARMONY_DATABASE__URL"] = "sqlite:///var/demo/harmony-demo.db"
    return load_config(args.config, environ)


async def _dispatch(args: argparse.Namespace, config: Config, output: Output) -> int:
    url = config.database.url
    action = getattr(args, f"{args.command}_command", None)
    if args.command == "config":
        return config_check.report(config, _parts(args), output.say, environ=os.environ)
    if args.command in RUNNING:
        # Before the database: a missing setting is named first, and nothing starts.
        running.check_config(config, _parts(args))
    creates = (args.command, action) in {("db", "upgrade"), ("demo", None), ("import", None)}
    path = sqlite_file(url)
    if creates:
        _ensure_sqlite_folder(path)
    elif path is not None and not path.is_file():
        # A mistyped path creates nothing.
        raise InvalidInput(
            _("There is no database at %(path)s. Run: harmony db upgrade", path=str(path))
        )
    if (args.command, action) in READ_ONLY:
        url = read_only_url(url)
    config = replace(config, database=replace(config.database, url=url))
    if args.command in RUNNING:
        return await _run(config, _parts(args), output)
    # A database of one's own (--database, --config, the environment): load it only.
    chosen = args.database or args.config or "HARMONY_DATABASE__URL" in os.environ
    if args.command == "demo" and args.walkthrough and (args.load_only or chosen):
        raise InvalidInput(
            _(
                "--walkthrough runs in the live demo, on its own database: leave out "
                "--load-only, --database and --config."
            )
        )
    if args.command == "demo" and not (args.load_only or chosen):
        from harmony_matrix.demo.live import run_live_demo

        return await run_live_demo(
            config, output.say, reset=args.reset, walkthrough=args.walkthrough
        )
    ctx = ServiceContext.from_config(config)
    engine = ctx.engine
    try:
        if args.command == "db":
            return await _db(args, ctx, output)
        if args.command == "demo":
            from harmony_matrix.demo import run_demo

            return await run_demo(ctx, output.say, reset=args.reset)
        if args.command == "import":
            return await _import(args, ctx, output)
        await migrations.require_current_schema(engine)
        handler: Callable[[argparse.Namespace, ServiceContext, Output], Awaitable[int]] = {
            "members": _members,
            "assemblies": _assemblies_import,
            "quorum": _quorum,
            "petition": _petition_status,
            "ballots": _ballots_enter,
            "consensus": _consensus,
            "export": _export,
        }[args.command]
        if (args.command, action) == ("assemblies", "list"):
            handler = _assemblies_list
        return await handler(args, ctx, output)
    finally:
        await engine.dispose()


#: The commands that run until stopped; each names the parts it runs.
RUNNING = {"run", "bot", "web"}


def _parts(args: argparse.Namespace) -> frozenset[running.PartName]:
    only = args.command if args.command in ("bot", "web") else getattr(args, "only", None)
    if only is not None:
        return frozenset({running.PartName(only)})
    return frozenset(running.PartName)


async def _run(config: Config, parts: frozenset[running.PartName], output: Output) -> int:
    try:
        await running.run(config, parts, output.say)
    except running.PartFailed as failure:
        if isinstance(failure.cause, HarmonyError):
            raise failure.cause from failure  # bad input, named: exit 2
        _crash(output, failure.cause or failure, part=failure.part)
        return running.EXIT_STATUS[failure.part]
    return EXIT_OK


def _ensure_sqlite_folder(path: Path | None) -> None:
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InvalidInput(
            _(
                "Cannot create the folder of the database %(path)s: %(reason)s.",
                path=str(path),
                reason=error.strerror or type(error).__name__,
            )
        ) from error


async def _db(args: argparse.Namespace, ctx: ServiceContext, output: Output) -> int:
    engine = ctx.engine
    if args.db_command == "backup":
        source = sqlite_file(engine.url.render_as_string(hide_password=False))
        if source is None:
            raise InvalidInput(
                _("harmony db backup copies a SQLite file; back up PostgreSQL with pg_dump.")
            )
        await asyncio.to_thread(export.backup_sqlite, source, args.file)
        output.say(_("The database was copied to %(path)s.", path=str(args.file)))
        return EXIT_OK
    if args.db_command == "upgrade":
        await migrations.upgrade(engine)
        output.say(
            _(
                "The database is up to date (revision %(revision)s).",
                revision=migrations.head_revision(),
            )
        )
        return EXIT_OK
    state = await migrations.schema_state(engine)
    output.say(
        _(
            "Schema revision: %(current)s (this version of Harmony: %(head)s).",
            current=state.current or "-",
            head=state.head,
        )
    )
    return EXIT_OK if state.up_to_date else EXIT_BAD_INPUT


def read_bytes(path: Path) -> bytes:
    """A file the operator named; any reason it cannot be read is bad input, named."""
    try:
        if path.exists() and not path.is_file() and not path.is_dir():
            # A FIFO or a device would block or never end: not a file someone saved.
            raise InvalidInput(_("%(path)s is not a regular file.", path=str(path)))
        return path.read_bytes()
    except FileNotFoundError as error:
        raise InvalidInput(_("There is no file %(path)s.", path=str(path))) from error
    except IsADirectoryError as error:
        raise InvalidInput(_("%(path)s is a folder, not a file.", path=str(path))) from error
    except OSError as error:
        raise InvalidInput(
            _(
                "Cannot read %(path)s: %(reason)s.",
                path=str(path),
                reason=error.strerror or type(error).__name__,
            )
        ) from error


def read_text(path: Path) -> str:
    data = read_bytes(path)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidInput(
            _("%(path)s is not UTF-8 text. Save it as CSV UTF-8 and try again.", path=str(path))
        ) from error


class Progress:
    """A progress line on stderr, only when stderr is a terminal (never in a pipe or a
    log), rewritten in place at most ten times a second."""

    def __init__(self, output: Output, label: Message) -> None:
        self.enabled = sys.stderr.isatty()
        self.text = label.render(output.language)
        self.last = 0.0
        self.shown = False

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if not self.enabled or (now - self.last < 0.1 and done < total):
            return
        self.last = now
        self.shown = True
        sys.stderr.write(f"\r{self.text}: {done}/{total}")
        sys.stderr.flush()

    def clear(self) -> None:
        if self.shown:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()
            self.shown = False


async def _members(args: argparse.Namespace, ctx: ServiceContext, output: Output) -> int:
    if args.members_command == "end-role":
        return await _end_role(args, ctx, output)
    return await _members_import(args, ctx, output)


async def _members_import(args: argparse.Namespace, ctx: ServiceContext, output: Output) -> int:
    reading = Progress(output, _("Reading the file"))
    try:
        rows, problems = parse_members(read_text(args.file), ctx.party.timezone, reading)
    finally:
        reading.clear()
    writing = Progress(output, _("Writing"))
    try:
        report = await registry.import_people(
            ctx, rows, problems, apply=args.apply, progress=writing
        )
    finally:
        writing.clear()
    return _print_report(report, output, args.apply, verbose=args.verbose)


async def _end_role(args: argparse.Namespace, ctx: ServiceContext, output: Output) -> int:
    matrix_id = check_matrix_id(args.matrix_id)
    role: Role | None = None
    if args.role is not None:
        try:
            role = Role(args.role.strip().lower())
        except ValueError as error:
            raise InvalidInput(
                _(
                    "The role “%(role)s” is not known; use %(roles)s.",
                    role=args.role,
                    roles=any_of(item.value for item in Role),
                )
            ) from error
    on = ctx.now()
    if args.on is not None:
        try:
            day = date.fromisoformat(args.on)
        except ValueError as error:
            raise InvalidInput(
                _("--on “%(value)s” is not a date; write YYYY-MM-DD.", value=args.on)
            ) from error
        on = datetime.combine(day, datetime.min.time(), tzinfo=ZoneInfo(ctx.party.timezone))
    ended = await registry.end_role(ctx, None, matrix_id, args.assembly, role, on)
    output.say(
        _n(
            "%(who)s no longer holds the role %(roles)s in %(assembly)s from %(on)s.",
            "%(who)s no longer holds the roles %(roles)s in %(assembly)s from %(on)s.",
            len(ended),
            who=matrix_id,
            roles=list_of(item.value for item in ended),
            assembly=args.assembly,
            on=on.astimezone(ZoneInfo(ctx.party.timezone)).strftime("%Y-%m-%d %H:%M"),
        )
    )
    return EXIT_OK


async def _assemblies_import(args: argparse.Namespace, ctx: ServiceContext, output: Output) -> int:
    specs, problems = parse_assemblies(read_text(args.file), ctx.party.reference_prefix)
    report = await registry.import_assemblies(ctx, specs, problems, apply=args.apply)
    return _print_report(report, output, args.apply, verbose=args.verbose)


def _print_report(report: ImportReport, output: Output, apply: bool, *, verbose: bool) -> int:
    """Problems first (stderr), then what changes (stdout; unchanged rows only with
    --verbose, and nothing when a problem means nothing is written), then the counts."""

    def line(row: RowReport) -> str:
        where = report.where(row).render(output.language)
        return f"{where}\t{row.key}\t{OUTCOME_NAMES[row.outcome].render(output.language)}"

    for row in report.rows:
        if row.reason is not None:
            output.warn(f"{line(row)}: {row.reason.render(output.language)}")
    if report.ok or verbose:
        for row in report.rows:
            if row.reason is None and (verbose or row.outcome is not Outcome.UNCHANGED):
                output.say(line(row))
    counts = {outcome.value: report.count(outcome) for outcome in OUTCOME_NAMES}
    summary = _(
        "%(created)s new, %(updated)s updated, %(unchanged)s unchanged, %(error)s with errors.",
        **counts,
    )
    if not report.ok:
        output.warn(summary)
        output.warn(_("Nothing was written. Correct the rows above and run the import again."))
        return EXIT_BAD_INPUT
    output.say(summary)
    if apply:
        output.say(_("The changes were written."))
    else:
        output.say(_("This was a dry run: nothing was written. Add --apply to write the changes."))
    return EXIT_OK


async def _assemblies_list(args: argparse.Namespace, ctx: ServiceContext, output: Output) -> int:
    listing = await lookup.list_assemblies(ctx)
    if not listing:
        output.say(_("There are no assemblies yet. Import them: harmony assemblies import FILE"))
    for assembly in listing:
        output.say(f"{assembly.slug}\t{assembly.reference}\t{assembly.name}")
    return EXIT_OK


async def _quorum(args: argparse.Namespace, ctx: ServiceContext, output: Output) -> int:
    found = await registry.assembly_quorum(ctx, args.assembly)
    quorum = found.quorum
    output.say(_("%(name)s (%(reference)s)", name=found.name, reference=found.reference))
    output.say(_("Active members: %(count)s", count=quorum.active_population))
    output.say(_("Quorum for an Assembly Moot: %(needed)s", needed=quorum.needed))
    output.say(quorum.basis)
    if not quorum.reachable:
        output.say(
            _(
                "This assembly has fewer active members than its quorum, so it cannot hold a "
                "Moot on its own until more members take part."
            )
        )
    return EXIT_OK


async def _petition_status(args: argparse.Namespace, ctx: ServiceContext, output: Output) -> int:
    view = await petitions.petition_status(ctx, args.id)
    output.say(_("%(ref)s: %(title)s", ref=view.ref, title=view.title))
    output.say(
        _(
            "Signatures: %(count)s of %(threshold)s needed (%(share)s%% of %(members)s "
            "Members when it opened).",
            count=view.progress.signatures,
            threshold=view.progress.threshold,
            share=f"{float(ctx.rules.petition_share * 100):g}",
            members=view.members_at_opening,
        )
    )
    if view.party_thing_ref is not None and view.party_thing_by is not None:
        output.say(
            _(
                "The threshold is reached: it called Party Thing %(thing)s, to be held by %(day)s.",
                thing=view.party_thing_ref,
                day=calendar_day(view.party_thing_by),
            )
        )
    elif view.progress.reached:
        output.say(_("The threshold is reached: the General Secretary calls a Party Thing."))
    else:
        output.say(_("Still needed: %(missing)s.", missing=view.progress.missing))
    return EXIT_OK


async def _ballots_enter(args: argparse.Namespace, ctx: ServiceContext, output: Output) -> int:
    """The paper ballots of an in-person vote, entered by the operator (``!ballot paper``
    says how); the file is in the format of ``harmony tally``."""
    view = await paper_votes.enter_paper_vote(ctx, None, args.meeting, read_bytes(args.file))
    output.say(
        _n(
            "%(ref)s: %(count)s paper ballot was counted.",
            "%(ref)s: %(count)s paper ballots were counted.",
            view.cast,
            ref=view.meeting_ref,
        )
    )
    winner = view.result.get("winner") if view.result is not None else None
    if winner:
        output.say(_("The winner is “%(option)s”; it is recorded as consensus.", option=winner))
    else:
        output.say(
            _("There is no clear winner: the meeting returns to debate and will vote again.")
        )
    return EXIT_OK


async def _export(args: argparse.Namespace, ctx: ServiceContext, output: Output) -> int:
    text = export.dumps(await export.export_record(ctx))
    if args.file is None:
        sys.stdout.write(text)
        return EXIT_OK
    await asyncio.to_thread(export.write_new_file, args.file, text)
    output.say(_("The record was written to %(path)s.", path=str(args.file)))
    return EXIT_OK


async def _import(args: argparse.Namespace, ctx: ServiceContext, output: Output) -> int:
    try:
        data = json.loads(read_text(args.file))
    except json.JSONDecodeError as error:
        raise InvalidInput(
            _("%(path)s is not JSON: %(reason)s.", path=str(args.file), reason=str(error))
        ) from error
    export.check_document(data)  # before a brand-new database is created for it
    if (await migrations.schema_state(ctx.engine)).current is None:
        await migrations.upgrade(ctx.engine)  # a brand-new database
    await migrations.require_current_schema(ctx.engine)
    summary = await export.import_record(ctx, data)
    output.say(
        _("Imported %(count)s rows from %(path)s.", count=summary.total, path=str(args.file))
    )
    return EXIT_OK


async def _consensus(args: argparse.Namespace, ctx: ServiceContext, output: Output) -> int:
    if args.verify or args.expect_head or args.expect_count is not None:
        return await _verify_consensus(args, ctx, output)
    entries = await consensus.list_consensus(ctx, args.assembly)
    if not entries:
        output.say(_("No consensus has been recorded yet."))
    for entry in entries:
        line = (
            _(
                "#%(number)s %(meeting)s: %(question)s → %(outcome)s (Party Consensus)",
                number=entry.number,
                meeting=entry.meeting_ref,
                question=entry.question,
                outcome=entry.outcome,
            )
            if entry.party_consensus
            else _(
                "#%(number)s %(meeting)s: %(question)s → %(outcome)s",
                number=entry.number,
                meeting=entry.meeting_ref,
                question=entry.question,
                outcome=entry.outcome,
            )
        )
        output.say(line)
    return EXIT_OK


async def _verify_consensus(args: argparse.Namespace, ctx: ServiceContext, output: Output) -> int:
    check = await consensus.check_chain(
        ctx, expect_head=args.expect_head, expect_count=args.expect_count
    )
    output.say(
        _n(
            "The record of consensus holds %(count)s entry; head hash %(head)s.",
            "The record of consensus holds %(count)s entries; head hash %(head)s.",
            check.count,
            head=check.head,
        )
    )
    if check.problem is not None:
        output.warn(check.problem)
        output.warn(
            _("The record of consensus is broken at entry %(number)s.", number=check.broken)
        )
        return EXIT_FAILURE
    if check.expected_head_at is not None and check.expected_head_at < check.count:
        output.say(
            _n(
                "The published head is entry #%(number)s; %(count)s entry was recorded since.",
                "The published head is entry #%(number)s; %(count)s entries were recorded since.",
                check.count - check.expected_head_at,
                number=check.expected_head_at,
            )
        )
    output.say(_("The record of consensus is intact."))
    if args.expect_head is None and args.expect_count is None:
        output.say(
            _(
                "The chain alone cannot show entries removed from its end: compare the head "
                "hash with the last one announced (--expect-head HASH)."
            )
        )
    return EXIT_OK


def _tally(args: argparse.Namespace, output: Output) -> int:
    """The published-ballots contract: header row = option names (a leading ``receipt``
    column, as in Harmony's published ballots, is not an option), one row per ballot,
    whole scores 0-5, blank = 0."""
    # No name for the file's bytes: they are freed before the count needs its memory.
    options, scores = parse_ballots(read_bytes(args.file))
    result = tabulate(scores, options)
    if args.format == "json":
        print(json.dumps(result.to_json(output.language), ensure_ascii=False, indent=2))
    else:
        for line in result.explain(output.language):
            output.say(line)
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
