"""Command-line plumbing shared by every ``radioloc`` command: one-line errors with exit status 2, options whose
range or output path is checked by the parser (declared once, where the option is defined, so ``--help`` shows
it), and ``--device`` checking. ``radioloc.cli`` only wires commands with these."""

from __future__ import annotations

import errno
import signal
import sys
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer
import typer.core
from rich.console import Console
from rich.text import Text
from typer import _click as click  # typer (pinned) vendors click: its Context and exceptions live here
from typer._click.exceptions import BadParameter, ClickException, NoArgsIsHelpError

from radioloc.errors import RadiolocError
from radioloc.io import LOCK_FILE, check_output_path

USAGE_EXIT = 2
DISK_FULL = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}
_RECEIVED: dict[str, int] = {}  # the signal that interrupted the command, for its exit status


def _on_signal(signum: int, frame: object) -> None:
    _RECEIVED["signal"] = signum
    raise KeyboardInterrupt


def _catch_signals() -> dict:
    """SIGINT and SIGTERM raise KeyboardInterrupt in the main thread (recording which), so that the work unwinds
    (locks released, temporary files removed) and ends with one line; the previous handlers, to restore."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    _RECEIVED.clear()
    return {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}


def _interrupted(received: int, note: str = "files finished before are kept; run the same command again to resume") -> int:
    """The one line of an interrupted command, and its exit status (128 + the signal)."""
    _release_live_display()
    print_error(f"interrupted ({signal.Signals(received).name}): {note}")
    return 128 + received


@contextmanager
def stopping_on_signal(note: str):
    """Around a service's serving loop, which stops on SIGINT or SIGTERM after answering the requests in flight:
    like any command, one line (saying ``note``) and exit status 130 / 143, whether the signal reached this
    process as an interrupt or a supervisor reported it (:func:`signal_received`)."""
    try:
        yield
    except KeyboardInterrupt:
        received = _RECEIVED.pop("signal", None) or signal.SIGINT
    else:
        received = _RECEIVED.pop("signal", None)
        if received is None:
            return
    raise typer.Exit(_interrupted(received, note))


def signal_received(signum: int) -> None:
    """Record the signal a serving loop stopped on (it handled the signal itself)."""
    _RECEIVED["signal"] = signum


def _release_live_display() -> None:
    """Give back the streams a rich live display (a progress bar) redirected, when an interrupt cut its exit short:
    what is printed next would otherwise stay in its buffer."""
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        while hasattr(stream, "rich_proxied_file"):
            stream = stream.rich_proxied_file
        setattr(sys, name, stream)


def _restore_signals(handlers: dict) -> None:
    for sig, handler in handlers.items():
        signal.signal(sig, handler)


def print_error(message: str) -> None:
    """One line on stderr: scripts and people read the same thing."""
    Console(stderr=True).print(Text.assemble(("error:", "red"), " ", message), highlight=False, soft_wrap=True)


def fail(message: str) -> None:
    print_error(message)
    raise typer.Exit(USAGE_EXIT)


class RadiolocGroup(typer.core.TyperGroup):
    """The one place where expected failures become a one-line message and exit status 2, for every command that
    exists or is added later, under the installed script and typer's test runner alike:

    - ``RadiolocError`` raised by the work;
    - ``OSError`` on a path the user gave (it carries the file name);
    - the parser's own errors (unknown option, missing value, number out of its declared range), which click
      would print as a boxed multi-line panel;
    - a full disk (ENOSPC, EFBIG, EDQUOT): the file's name and what was kept;
    - SIGINT and SIGTERM, wherever they land (numba kernels turn them into SystemError): one line, exit 130 / 143.
    """

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        """The command, its outputs checked against its inputs once its options are parsed (:func:`check_outputs`)."""
        command = super().get_command(ctx, name)
        if command is not None and not isinstance(command, typer.core.TyperGroup) and not getattr(command, "_outputs_checked", False):
            run = command.invoke

            def invoke(sub_ctx: click.Context, run=run) -> Any:
                check_outputs(sub_ctx)
                return run(sub_ctx)

            command.invoke = invoke
            command._outputs_checked = True
        if command is not None and not getattr(command, "_paths_checked", False):
            for param in command.params:
                if _takes_path(param):
                    param.process_value = _refusing_empty(param, param.process_value)
            command._paths_checked = True
        return command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            check_outputs(ctx)  # a group that runs as a command (``evaluate --model ...``) has outputs of its own
            return super().invoke(ctx)
        except RadiolocError as exc:
            fail(str(exc))
        except OSError as exc:
            if exc.errno in DISK_FULL:
                fail(
                    f"{exc.filename or 'a file being written'}: {exc.strerror or exc}; that file was not written, everything written before it is kept (free space, then run the same command again to resume)"
                )
            if exc.filename is None or exc.errno == errno.EPIPE:
                raise
            fail(f"{exc.filename}: {exc.strerror or exc}")

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode: bool = True, **extra: Any) -> Any:
        handlers = _catch_signals()
        try:
            status = self._run(args, prog_name, complete_var, standalone_mode, **extra)
        finally:
            _restore_signals(handlers)
        if not standalone_mode:
            return status
        sys.exit(status)

    def _run(self, args, prog_name, complete_var, standalone_mode: bool, **extra: Any) -> Any:
        """The command's result (exit status, or what it returned when not standalone)."""
        try:
            result = super().main(args=args, prog_name=prog_name, complete_var=complete_var, standalone_mode=False, **extra)
        except NoArgsIsHelpError as exc:
            click.echo(exc.ctx.get_help())
            return 0
        except ClickException as exc:
            command = exc.ctx.command_path if getattr(exc, "ctx", None) is not None else "radioloc"
            print_error(f"{command}: {exc.format_message()} (see {command} --help)")
            return USAGE_EXIT
        except RadiolocError as exc:  # raised while parsing the top-level options
            print_error(str(exc))
            return USAGE_EXIT
        except (typer.Abort, KeyboardInterrupt, SystemError) as exc:
            received = _RECEIVED.pop("signal", None)
            by_signal = received is not None or isinstance(exc, KeyboardInterrupt) or isinstance(exc.__context__, KeyboardInterrupt)
            if not by_signal:
                if isinstance(exc, SystemError):
                    raise
                print_error("aborted")
                return 1
            return _interrupted(received or signal.SIGINT)
        received = _RECEIVED.pop("signal", None)
        if received is not None:  # typer turns a KeyboardInterrupt into a plain exit status 130
            return _interrupted(received)
        # Without standalone mode click returns an Exit's code instead of leaving: leave with it.
        if not standalone_mode:
            return result
        return result if isinstance(result, int) else 0


def _takes_path(param: click.Parameter) -> bool:
    annotation = getattr(getattr(param, "type_descriptor", None), "annotation", None)
    return annotation is Path or Path in getattr(annotation, "__args__", ())


def _refusing_empty(param: click.Parameter, process_value):
    """A path option's processing that refuses an empty value (the shell's ``--out ""``, or an unset variable),
    which would otherwise mean the current folder, and a file output written as a folder (``--out dir/``: the
    path type drops the slash)."""

    def checked(ctx: click.Context, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            raise BadParameter("an empty path; give a file or folder ('.' for the current folder)", ctx=ctx, param=param)
        if isinstance(value, str) and value.endswith("/") and getattr(param.callback, "output_kind", None) == "file":
            raise BadParameter(f"{value!r} names a folder; give a file name", ctx=ctx, param=param)
        return process_value(ctx, value)

    return checked


OUTPUTS = "radioloc.outputs"  # ctx.meta key: the output options of the command being run


def _checked_output(kind: str, updates_input: bool = False, resumes: str | None = None, suffixes: tuple[str, ...] = ()):
    def callback(ctx: click.Context, param: click.Parameter, value):
        if value is None or ctx.resilient_parsing:
            return value
        try:
            check_output_path(Path(value), kind)
        except RadiolocError as exc:
            raise BadParameter(str(exc), ctx=ctx, param=param) from None
        if suffixes and Path(value).suffix.lower() not in suffixes:
            raise BadParameter(f"{value}: must end in {' or '.join(suffixes)} (the format written)", ctx=ctx, param=param)
        ctx.meta.setdefault(OUTPUTS, []).append(Output(param, Path(value), kind, updates_input, resumes))
        return value

    callback.replaces_files = kind == "file" or resumes is None  # such an option needs force_option() beside it
    callback.output_kind = kind
    return callback


@dataclass(frozen=True)
class Output:
    """An output option's value, and how the command may treat what is already there."""

    param: click.Parameter
    path: Path
    kind: str  # "file" or "folder"
    updates_input: bool  # may be the command's own input, rewritten in place
    resumes: str | None  # a job's own folder, marked by this file: what is there is resumed, never replaced


def force_option():
    """``--force``: the one way to let a command replace an output that already exists (:func:`check_outputs`)."""
    return typer.Option(False, "--force", help="Replace outputs that already exist (without it they are refused).")


def output_dir_option(default, *flags: str, help: str, resumes: str | None = None, **kwargs: Any):
    """An option naming a folder radioloc writes into; the parser refuses one that cannot be written (a file in
    the way, an unwritable place) before any work starts, and one inside a dataset or deployment
    (:func:`check_outputs`). A job's own folder, marked by the file ``resumes`` names (written when the job
    starts), is resumed when it exists, and a folder holding other files is refused; any other output folder
    that already holds files is written into only with ``--force``."""
    return typer.Option(default, *flags, help=help, callback=_checked_output("folder", resumes=resumes), **kwargs)


def output_file_option(default, *flags: str, help: str, suffixes: tuple[str, ...], updates_input: bool = False, **kwargs: Any):
    """An option naming a file radioloc writes, in the format its suffix (one of ``suffixes``) names; checked like
    ``output_dir_option``, replaced only with ``--force``, and never one of the command's inputs unless
    ``updates_input`` (a checkpoint rewritten in place, atomically, with what was fitted on it)."""
    return typer.Option(default, *flags, help=help, callback=_checked_output("file", updates_input, suffixes=suffixes), **kwargs)


def _input_paths(value: object) -> list[Path]:
    """The existing paths an option's value names (a path, or comma-separated paths such as ``--data A,B``)."""
    if isinstance(value, Path):
        return [value] if value.exists() else []
    if isinstance(value, str) and value:
        return [Path(part.strip()) for part in value.split(",") if part.strip() and Path(part.strip()).exists()]
    return []


def _holds_files(folder: Path) -> bool:
    return folder.is_dir() and any(entry.name != LOCK_FILE for entry in folder.iterdir())


def check_outputs(ctx: click.Context) -> None:
    """Before a command runs: none of its outputs is one of its inputs, none lies inside a dataset or a deployment
    (their files are written by their own commands only; a dataset's ``figures/`` folder and a resumable job's own
    folder excepted), and none that already exists is replaced without ``--force``, so a typo in ``--out`` or
    ``--json`` cannot replace data."""
    from radioloc.datasets.layout import enclosing_artifact

    outputs: list[Output] = ctx.meta.pop(OUTPUTS, [])
    if not outputs:
        return
    output_params = {id(output.param) for output in outputs}
    inputs = [(param, path.resolve()) for param in ctx.command.params if id(param) not in output_params for path in _input_paths(ctx.params.get(param.name))]
    for output in outputs:
        flag, path, resolved = output.param.opts[0], output.path, output.path.resolve()
        in_place = False
        for other, source in inputs:
            if resolved == source:
                if not (output.updates_input and source.is_file()):
                    fail(f"{flag} {path}: is also this command's input ({other.opts[0] if other.opts else other.name}); write it elsewhere")
                in_place = True
        artifact = enclosing_artifact(resolved if output.kind == "folder" else resolved.parent)
        if artifact is not None and artifact != resolved:
            inside = resolved.relative_to(artifact).parts
            if inside[0] != "figures":
                fail(f"{flag} {path}: lies inside {artifact}, whose files only its own commands write; write it elsewhere (or under its figures/)")
        if artifact is not None and artifact == resolved and output.resumes is None:
            fail(
                f"{flag} {path}: is a dataset, deployment, experiments or demo folder, whose files only its own commands write; write elsewhere (or under its figures/)"
            )
        if output.resumes is not None and _holds_files(path) and not (path / output.resumes).is_file():
            fail(f"{flag} {path}: holds files but no {output.resumes}, so it is not this command's folder to resume; choose a new or empty folder")
        replaces = path.is_file() if output.kind == "file" else output.resumes is None and _holds_files(path)
        if replaces and not in_place and not ctx.params.get("force"):
            if "force" not in ctx.params:
                raise AssertionError(f"{ctx.command_path}: an output option that may replace files needs force_option()")
            what = "exists" if output.kind == "file" else "already holds files"
            fail(f"{flag} {path}: {what}; give --force to replace {'it' if output.kind == 'file' else 'them'}")


def check_device(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """``--device``: cpu, cuda or cuda:N, and only a CUDA device this machine has."""
    if value is None or ctx.resilient_parsing:
        return value
    import torch

    try:
        device = torch.device(value)
    except (RuntimeError, ValueError):
        raise BadParameter(f"{value!r} is not a device; use cpu or cuda (cuda:N)", ctx=ctx, param=param) from None
    if device.type not in ("cpu", "cuda"):
        raise BadParameter(f"{value!r}: radioloc runs on cpu or cuda", ctx=ctx, param=param)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise BadParameter("cuda: this machine has no CUDA device (use cpu)", ctx=ctx, param=param)
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise BadParameter(f"{value}: this machine has {torch.cuda.device_count()} CUDA device(s)", ctx=ctx, param=param)
    return value


def _check_rate(maximum: float):
    def callback(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
        if value is not None and not (0 < value <= maximum):  # NaN and infinities fail too
            raise BadParameter(f"{value} is not in (0, {maximum:g}]", ctx=ctx, param=param)
        return value

    return callback


def rate_option(*flags: str, help: str, maximum: float = 1.0):
    """An optional float in (0, ``maximum``]: a learning rate (above 1, Adam diverges at once)."""
    return typer.Option(None, *flags, help=f"{help} [0<x<={maximum:g}]", callback=_check_rate(maximum))


def _check_simulation(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    from radioloc.datasets.layout import SIMULATIONS

    if value is not None and value not in SIMULATIONS:
        raise BadParameter(f"{value!r} is not a simulation; choose from {', '.join(SIMULATIONS)}", ctx=ctx, param=param)
    return value


def simulation_option(flag: str, help: str):
    """One simulation of a dataset (DPM, DPMcars, IRT2, IRT2cars), checked by the parser."""
    return typer.Option("DPM", flag, help=help, callback=_check_simulation)


def device_option():
    return typer.Option(None, "--device", help="cpu or cuda (default: cuda when available).", callback=check_device)


def check_scheduler(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    from radioloc.cluster import SCHEDULER_ADDRESS

    if value is not None and not SCHEDULER_ADDRESS.match(value):
        raise BadParameter(f"{value!r} is not a Dask scheduler address such as tcp://HOST:8786", ctx=ctx, param=param)
    return value


def scheduler_option():
    return typer.Option(None, "--scheduler", help="Address of an existing Dask scheduler (tcp://HOST:PORT) whose workers share this file system; instead of --workers.",
                        callback=check_scheduler)  # fmt: skip


def nproc_option():
    return typer.Option(1, "--nproc", min=1, max=256, help="Training processes on this host (DDP: gloo on CPU, NCCL on GPU), started with torchrun; "
                                                           "or run `torchrun --nproc-per-node N -m radioloc train ...` yourself.")  # fmt: skip
