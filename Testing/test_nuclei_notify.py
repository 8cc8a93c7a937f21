"""Issue 20 item 5: a notification when a nuclei run ends or fails (command, and e-mail to a local SMTP server)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from email import message_from_bytes

import pytest

from SlicerImgSuite.errors import ImgSuiteError
from SlicerImgSuite.segmentation.nuclei_job import NucleiOptions, analyze_nuclei

PASSWORD = "s3cret-Pa55"


class _Inbox:
    def __init__(self):
        self.messages, self.logins = [], []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        self.messages.append((envelope.mail_from, envelope.rcpt_tos, envelope.content))
        return "250 OK"

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        from aiosmtpd.smtp import AuthResult

        self.logins.append(auth_data.login.decode())
        return AuthResult(success=auth_data.password.decode() == PASSWORD)


@pytest.fixture
def smtp(monkeypatch, tmp_path):
    from aiosmtpd.controller import Controller

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    inbox = _Inbox()
    controller = Controller(
        inbox, hostname="127.0.0.1", port=port, authenticator=inbox.authenticate, auth_require_tls=False
    )
    controller.start()
    config = tmp_path / "notify.ini"
    config.write_text(f"[smtp]\nhost = 127.0.0.1\nport = {port}\nsender = lab@example.org\nuser = lab\n")
    monkeypatch.setenv("IMGSUITE_CONFIG", str(config))
    monkeypatch.setenv("IMGSUITE_SMTP_RECIPIENT", "me@example.org")
    monkeypatch.setenv("IMGSUITE_SMTP_SECURITY", "none")
    monkeypatch.setenv("IMGSUITE_SMTP_PASSWORD", PASSWORD)
    yield inbox, config
    controller.stop()


def _src(shared_data, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    (src / "a.tif").symlink_to(shared_data / "dsb2018-nuclei-stardist-sample" / "img2d.tif")
    (src / "notes.txt").write_text("not an image")
    return src


def test_one_email_per_run_with_counts_and_folder_and_no_password(shared_data, tmp_path, smtp):
    inbox, _ = smtp
    out = tmp_path / "out"
    options = NucleiOptions(method="threshold", threshold=30, notify_email=True)
    results, warnings = analyze_nuclei(_src(shared_data, tmp_path), out, options)
    assert len(inbox.messages) == 1 and inbox.logins == ["lab"]
    sender, recipients, content = inbox.messages[0]
    assert sender == "lab@example.org" and recipients == ["me@example.org"]
    assert PASSWORD.encode() not in content
    body = message_from_bytes(content)
    text = body.get_payload(decode=True).decode()
    nuclei = sum(results[0].counts)
    assert nuclei > 50 and f"nuclei: {nuclei}" in text and "images: 1" in text and "warnings: 1" in text
    assert str(out.absolute()) in text and body["Subject"].startswith("imgsuite nuclei done: 1 images")
    assert not [w for w in warnings if "notification" in w]
    # a failed run: one message too, saying so
    with pytest.raises(ImgSuiteError):
        analyze_nuclei(tmp_path / "no-such-folder", tmp_path / "out2", options)
    assert len(inbox.messages) == 2
    failed = message_from_bytes(inbox.messages[1][2])
    assert "failed" in failed["Subject"] and "no such file or folder" in failed.get_payload(decode=True).decode()
    assert all(PASSWORD.encode() not in m[2] for m in inbox.messages)


def test_email_settings_are_checked_before_the_run(shared_data, tmp_path, smtp, monkeypatch):
    inbox, config = smtp
    src, out = _src(shared_data, tmp_path), tmp_path / "out"
    options = NucleiOptions(method="threshold", threshold=30, notify_email=True)
    monkeypatch.delenv("IMGSUITE_SMTP_PASSWORD")
    with pytest.raises(ImgSuiteError, match="no SMTP password"):
        analyze_nuclei(src, out, options)
    config.write_text(config.read_text() + f"password = {PASSWORD}\n")
    with pytest.raises(ImgSuiteError, match="not read from a file"):
        analyze_nuclei(src, out, options)
    assert not out.exists() and not inbox.messages


def test_notify_command_gets_the_summary(shared_data, tmp_path):
    record = tmp_path / "record.json"
    script = tmp_path / "hook.py"
    script.write_text(
        "import json, os, sys\n"
        f"json.dump({{'argv': sys.argv[1:], 'env': {{k: v for k, v in os.environ.items() if k.startswith('IMGSUITE_')}}}},"
        f" open({str(record)!r}, 'w'))\n"
    )
    out = tmp_path / "out"
    cli = [sys.executable, "-m", "SlicerImgSuite.cli", "nuclei", "--input", str(_src(shared_data, tmp_path))]
    cli += ["--output", str(out), "--method", "threshold", "--threshold", "30"]
    run = subprocess.run([*cli, "--notify-command", f"{sys.executable} {script}"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    got = json.loads(record.read_text())
    env = got["env"]
    assert env["IMGSUITE_STATUS"] == "done" and env["IMGSUITE_OUTPUT"] == str(out.absolute())
    assert env["IMGSUITE_IMAGES"] == "1" and int(env["IMGSUITE_NUCLEI"]) > 50 and env["IMGSUITE_WARNINGS"] == "1"
    assert got["argv"] == [env["IMGSUITE_SUMMARY"]] and env["IMGSUITE_NUCLEI"] + " nuclei" in got["argv"][0]
    failing = subprocess.run([*cli, "--notify-command", "false"], capture_output=True, text=True)
    assert failing.returncode == 0 and "notification command failed" in failing.stderr  # results kept, warned
