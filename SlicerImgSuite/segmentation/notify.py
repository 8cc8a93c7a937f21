"""Tell the user when a long run ends or fails: run a command, and/or send one e-mail.

The Immunostained Image Analysis program e-mails at the end of a run; here both are optional:

* ``--notify-command CMD``: ``CMD`` (split like a shell line, not run by a shell) gets the one-line summary as its
  last argument and the fields in the environment: ``IMGSUITE_STATUS`` (``done`` or ``failed``),
  ``IMGSUITE_IMAGES``, ``IMGSUITE_FRAMES``, ``IMGSUITE_NUCLEI``, ``IMGSUITE_OUTPUT`` (the output folder),
  ``IMGSUITE_WARNINGS``, ``IMGSUITE_ERROR`` and ``IMGSUITE_SUMMARY``.
* ``--notify-email``: one message over SMTP. Settings from the ``[smtp]`` section of the user's config file
  (``$IMGSUITE_CONFIG``, else ``$XDG_CONFIG_HOME/imgsuite/notify.ini``, else ``~/.config/imgsuite/notify.ini``) with
  ``host``, ``port``, ``sender``, ``recipient``, optional ``user`` and ``security`` (``starttls``, ``ssl`` or
  ``none``), each overridden by ``IMGSUITE_SMTP_HOST``, ``_PORT``, ``_SENDER``, ``_RECIPIENT``, ``_USER``,
  ``_SECURITY``. The password only from ``IMGSUITE_SMTP_PASSWORD`` or the system keyring (service ``imgsuite-smtp``,
  the user name; needs the ``keyring`` package): never from the command line or a file; a ``password`` in the
  config file is refused.
"""

from __future__ import annotations

import configparser
import os
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..errors import ImgSuiteError

SMTP_FIELDS = ("host", "port", "sender", "recipient", "user", "security")
SMTP_SECURITY = ("starttls", "ssl", "none")
KEYRING_SERVICE = "imgsuite-smtp"


@dataclass
class RunSummary:
    """What a run did, for the notification."""

    job: str
    status: str  # "done" or "failed"
    output: Path
    images: int = 0
    frames: int = 0
    nuclei: int = 0
    warnings: tuple[str, ...] = ()
    error: str = ""

    def line(self) -> str:
        """One line: ``imgsuite nuclei done: 2 images, 4 frames, 157 nuclei -> /out``."""
        if self.status != "done":
            return f"imgsuite {self.job} failed: {self.error} (output folder {self.output})"
        return (
            f"imgsuite {self.job} done: {self.images} images, {self.frames} frames, {self.nuclei} nuclei, "
            f"{len(self.warnings)} warnings -> {self.output}"
        )

    def environment(self) -> dict[str, str]:
        fields = dict(status=self.status, images=self.images, frames=self.frames, nuclei=self.nuclei)
        fields.update(output=self.output, warnings=len(self.warnings), error=self.error, summary=self.line())
        return {f"IMGSUITE_{k.upper()}": str(v) for k, v in fields.items()}


def config_path() -> Path:
    """The user's notification config file (it need not exist)."""
    if os.environ.get("IMGSUITE_CONFIG"):
        return Path(os.environ["IMGSUITE_CONFIG"])
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "imgsuite" / "notify.ini"


def smtp_settings() -> dict[str, str]:
    """The SMTP settings (config file, then environment); an error naming what is missing or not allowed."""
    path = config_path()
    settings: dict[str, str] = {}
    if path.is_file():
        parser = configparser.ConfigParser()
        try:
            parser.read(path)
        except configparser.Error as exc:
            raise ImgSuiteError(f"cannot read the notification config: {exc}", path) from None
        section = parser["smtp"] if parser.has_section("smtp") else {}
        if "password" in section:
            raise ImgSuiteError(
                "[smtp] password: not read from a file; set IMGSUITE_SMTP_PASSWORD or the keyring", path
            )
        settings.update({k: section[k] for k in SMTP_FIELDS if k in section})
    for key in SMTP_FIELDS:
        if os.environ.get(f"IMGSUITE_SMTP_{key.upper()}"):
            settings[key] = os.environ[f"IMGSUITE_SMTP_{key.upper()}"]
    missing = [k for k in ("host", "sender", "recipient") if not settings.get(k)]
    if missing:
        raise ImgSuiteError(
            f"--notify-email needs SMTP {', '.join(missing)}: [smtp] in {path} or IMGSUITE_SMTP_{missing[0].upper()}"
        )
    settings.setdefault("security", "starttls" if settings.get("user") else "none")
    if settings["security"] not in SMTP_SECURITY:
        raise ImgSuiteError(f"SMTP security must be one of {', '.join(SMTP_SECURITY)}, got {settings['security']!r}")
    try:
        settings["port"] = str(int(settings.get("port") or (465 if settings["security"] == "ssl" else 25)))
    except ValueError:
        raise ImgSuiteError(f"SMTP port must be a number, got {settings['port']!r}") from None
    return settings


def check_email() -> dict[str, str]:
    """The SMTP settings, and a password when a user is set: checked before a long run, not after it."""
    settings = smtp_settings()
    if settings.get("user") and smtp_password(settings["user"]) is None:
        raise ImgSuiteError(
            f"no SMTP password for {settings['user']}: set IMGSUITE_SMTP_PASSWORD or store it in the keyring"
        )
    return settings


def smtp_password(user: str) -> str | None:
    """From ``IMGSUITE_SMTP_PASSWORD``, else the system keyring (when the ``keyring`` package is installed)."""
    if os.environ.get("IMGSUITE_SMTP_PASSWORD"):
        return os.environ["IMGSUITE_SMTP_PASSWORD"]
    try:
        import keyring
    except ImportError:
        return None
    return keyring.get_password(KEYRING_SERVICE, user)


def send_email(summary: RunSummary, settings: dict[str, str]) -> None:
    """One message with the summary; logs in only when a user is set."""
    import smtplib
    from email.message import EmailMessage

    message = EmailMessage()
    message["Subject"] = summary.line()[:200]
    message["From"], message["To"] = settings["sender"], settings["recipient"]
    lines = [summary.line(), "", f"output folder: {summary.output}", f"images: {summary.images}"]
    lines += [f"frames: {summary.frames}", f"nuclei: {summary.nuclei}", f"warnings: {len(summary.warnings)}"]
    lines += [f"  {w}" for w in summary.warnings[:20]] + ([f"error: {summary.error}"] if summary.error else [])
    message.set_content("\n".join(lines) + "\n")
    kind = smtplib.SMTP_SSL if settings["security"] == "ssl" else smtplib.SMTP
    with kind(settings["host"], int(settings["port"]), timeout=30) as server:
        if settings["security"] == "starttls":
            server.starttls()
        if settings.get("user"):
            server.login(settings["user"], smtp_password(settings["user"]) or "")
        server.send_message(message)


def run_command(summary: RunSummary, command: str) -> None:
    """``command`` with the summary line as its last argument and the fields in its environment."""
    argv = shlex.split(command)
    if not argv:
        raise ImgSuiteError("--notify-command is empty")
    done = subprocess.run([*argv, summary.line()], env={**os.environ, **summary.environment()}, timeout=120)
    if done.returncode != 0:
        raise ImgSuiteError(f"--notify-command exited with status {done.returncode}: {command}")


def notify(summary: RunSummary, command: str | None = None, email: bool = False) -> list[str]:
    """Send the notifications asked for; their failures come back as warnings (the run's results stay)."""
    problems = []
    if command:
        try:
            run_command(summary, command)
        except (ImgSuiteError, OSError, subprocess.TimeoutExpired) as exc:
            problems.append(f"notification command failed: {exc}")
    if email:
        try:
            send_email(summary, check_email())
        except (ImgSuiteError, OSError, ValueError) as exc:  # smtplib's errors are OSErrors
            problems.append(f"notification e-mail failed: {exc}")
    return problems
