"""A small SMTP server for tests that run the real worker in another process: it speaks enough of
RFC 5321 for Django's SMTP back-end and keeps every message it accepts.

`hold_next()` makes it keep the next message without answering its DATA command, so that the
sending process can be killed while it waits for the answer. A message whose sender disconnects
before the answer is not accepted, as a mail server does with an unfinished transaction.
"""

from __future__ import annotations

import email
import email.policy
import socketserver
import threading
import time
from dataclasses import dataclass, field
from email.message import EmailMessage


@dataclass
class Accepted:
    mail_from: str
    recipients: list[str]
    message: EmailMessage
    at: float = field(default_factory=time.monotonic)

    @property
    def text(self) -> str:
        body = self.message.get_body(preferencelist=("plain",))
        return body.get_content() if body is not None else ""


@dataclass
class _State:
    accepted: list[Accepted] = field(default_factory=list)
    discarded: list[Accepted] = field(default_factory=list)
    hold_armed: bool = False
    held: Accepted | None = None
    held_event: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Session(socketserver.StreamRequestHandler):
    server: _Server

    def reply(self, line: str) -> None:
        self.wfile.write(f"{line}\r\n".encode())
        self.wfile.flush()

    def handle(self) -> None:
        state = self.server.state
        mail_from, recipients = "", []
        self.reply("220 sink ESMTP")
        while True:
            raw = self.rfile.readline()
            if not raw:
                return
            verb = raw.decode("ascii", "replace").strip().split(" ", 1)[0].upper()
            argument = raw.decode("ascii", "replace").strip()[len(verb) :].strip()
            if verb in ("EHLO", "HELO"):
                self.reply("250 sink")
            elif verb == "MAIL":
                mail_from, recipients = argument.partition(":")[2].strip("<> "), []
                self.reply("250 OK")
            elif verb == "RCPT":
                recipients.append(argument.partition(":")[2].strip("<> "))
                self.reply("250 OK")
            elif verb == "DATA":
                self.reply("354 End data with <CR><LF>.<CR><LF>")
                lines = []
                while (line := self.rfile.readline()) not in (b".\r\n", b".\n", b""):
                    lines.append(line[1:] if line.startswith(b"..") else line)
                message = email.message_from_bytes(b"".join(lines), policy=email.policy.default)
                assert isinstance(message, EmailMessage)
                item = Accepted(mail_from=mail_from, recipients=recipients, message=message)
                with state.lock:
                    hold = state.hold_armed and state.held is None
                    if hold:
                        state.held = item
                if hold:
                    state.held_event.set()
                    # No answer: the sender waits until it dies, which ends this connection.
                    while self.rfile.read(1):
                        pass
                    with state.lock:
                        state.discarded.append(item)
                    return
                with state.lock:
                    state.accepted.append(item)
                self.reply("250 OK queued")
            elif verb in ("RSET", "NOOP"):
                self.reply("250 OK")
            elif verb == "QUIT":
                self.reply("221 Bye")
                return
            else:
                self.reply("502 Command not implemented")


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    state: _State


class MailSink:
    def __init__(self) -> None:
        self._server = _Server(("127.0.0.1", 0), _Session)
        self._server.state = _State()
        self._thread = threading.Thread(target=self._server.serve_forever, name="mail-sink", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> MailSink:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def accepted(self) -> list[Accepted]:
        with self._server.state.lock:
            return list(self._server.state.accepted)

    @property
    def discarded(self) -> list[Accepted]:
        with self._server.state.lock:
            return list(self._server.state.discarded)

    def hold_next(self, timeout: float) -> Accepted:
        """Keep the next message unanswered; returns it once it has arrived."""
        state = self._server.state
        with state.lock:
            state.hold_armed, state.held = True, None
            state.held_event.clear()
        if not state.held_event.wait(timeout):
            raise TimeoutError("no message arrived to hold")
        with state.lock:
            state.hold_armed = False
            assert state.held is not None
            return state.held
