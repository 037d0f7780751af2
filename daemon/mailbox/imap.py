"""The one owner of IMAP: a blocking imapclient connection to one mailbox folder.

Errors are sorted into two kinds the watcher acts on:
- ImapTransient: network trouble, timeouts, the server going away: back off and reconnect;
- ImapPermanent: a human must act (wrong password, missing folder): report, retry slowly.
Messages are only ever read with BODY.PEEK[] and marked with keywords: never deleted.
"""

from __future__ import annotations

import contextlib
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import imapclient
from imapclient.exceptions import IMAPClientError, LoginError
from imapclient.imapclient import SENT as SPECIAL_USE_SENT

from daemon.config import ImapConfig
from daemon.mail.values import RawMessage

_MESSAGE_ID = re.compile(r"<([^<>\s]+)>")

# Responses that mean "something changed in the folder" during IDLE.
_CHANGE = {b"EXISTS", b"RECENT", b"FETCH", b"EXPUNGE"}


class ImapError(Exception):
    """Base of IMAP failures."""


def _peer_closed(sock: socket.socket) -> bool:
    """Whether the server has closed this connection (read side at end of file).

    IMAPClient.idle_check() swallows end-of-file and returns no responses at once, again
    and again (mjs/imapclient#565): without this check a server restart during IDLE
    spins a core until the IDLE is renewed, and no mail is read meanwhile. The peek reads
    the TCP stream under any TLS layer and consumes nothing.
    """
    timeout = sock.gettimeout()
    try:
        # Non-blocking for the peek: with a timeout set, Python waits for data first.
        sock.setblocking(False)
        return socket.socket.recv(sock, 1, socket.MSG_PEEK) == b""
    except BlockingIOError:
        return False  # open, nothing waiting
    except OSError:
        return True  # reset, or otherwise unusable
    finally:
        sock.settimeout(timeout)


class ImapTransient(ImapError):
    """Raised on network errors, timeouts and server hiccups: reconnect with backoff."""


class ImapPermanent(ImapError):
    """Raised when a human must act: bad credentials, missing folder, refused TLS."""


@dataclass(frozen=True)
class FolderState:
    uidvalidity: int
    uidnext: int
    exists: int
    supports_idle: bool
    keywords_allowed: bool


def _text(exc: BaseException) -> str:
    """The server's words, decoded: imaplib hands them over as bytes."""
    parts = [a.decode("utf-8", "replace") if isinstance(a, bytes) else str(a) for a in exc.args]
    text = " ".join(parts) or type(exc).__name__
    return text[2:-1] if text.startswith(("b'", 'b"')) and text.endswith(("'", '"')) else text


def _network(exc: OSError) -> str:
    if isinstance(exc, socket.gaierror):
        return "host name not found"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (nothing listening there?)"
    if isinstance(exc, TimeoutError | socket.timeout):
        return "timed out"
    return exc.strerror or type(exc).__name__


def _translate(exc: BaseException, where: str = "") -> ImapError:
    """An IMAP failure as the error taxonomy the watcher acts on, naming the server."""
    at = f"{where}: " if where else ""
    if isinstance(exc, ImapError):
        return exc
    if isinstance(exc, LoginError):
        return ImapPermanent(f"{at}login refused: {_text(exc)}")
    if isinstance(exc, ssl.SSLCertVerificationError):
        return ImapPermanent(f"{at}TLS certificate not trusted: {exc.verify_message}")
    if isinstance(exc, OSError) and not isinstance(exc, ssl.SSLError):
        return ImapTransient(f"{at}{_network(exc)}")
    return ImapTransient(f"{at}{type(exc).__name__}: {_text(exc)}")


_EXPECTED = (IMAPClientError, OSError, socket.timeout, ssl.SSLError, EOFError)


class ImapSession:
    """A logged-in connection with one folder selected (read-write, for keywords)."""

    def __init__(self, config: ImapConfig, password: str) -> None:
        self.config = config
        self._password = password
        self._client: imapclient.IMAPClient | None = None
        self.state: FolderState | None = None

    @property
    def client(self) -> imapclient.IMAPClient:
        if self._client is None:
            raise ImapTransient("not connected")
        return self._client

    @property
    def connected(self) -> bool:
        return self._client is not None and self.state is not None

    def connect(self) -> FolderState:
        """Connect, log in, select the folder. Raises ImapTransient or ImapPermanent."""
        cfg = self.config
        try:
            context = ssl.create_default_context() if cfg.security != "none" else None
            client = imapclient.IMAPClient(
                cfg.host,
                port=cfg.port,
                ssl=cfg.security == "tls",
                ssl_context=context if cfg.security == "tls" else None,
                timeout=cfg.timeout,
            )
            client.normalise_times = False
            if cfg.security == "starttls":
                client.starttls(context)
            client.login(cfg.username, self._password)
            self._client = client
            return self.select()
        except _EXPECTED as exc:
            self.close()
            raise _translate(exc, f"IMAP {cfg.host}:{cfg.port} as {cfg.username}") from exc

    def select(self) -> FolderState:
        client = self.client
        try:
            if not client.folder_exists(self.config.folder):
                raise ImapPermanent(f"folder {self.config.folder!r} does not exist")
            info = client.select_folder(self.config.folder)
            caps = client.capabilities()
        except _EXPECTED as exc:
            raise _translate(exc) from exc
        permanent = info.get(b"PERMANENTFLAGS", ())
        self.state = FolderState(
            uidvalidity=int(info[b"UIDVALIDITY"]),
            uidnext=int(info.get(b"UIDNEXT", 0)),
            exists=int(info.get(b"EXISTS", 0)),
            supports_idle=b"IDLE" in caps,
            keywords_allowed=b"\\*" in permanent,
        )
        return self.state

    def new_uids(self, after_uid: int) -> list[int]:
        """UIDs above `after_uid` not yet marked triaged, ascending."""
        try:
            found = self.client.search(
                [
                    "UID",
                    f"{after_uid + 1}:*",
                    "UNKEYWORD",
                    self.config.triaged_keyword,
                    "UNKEYWORD",
                    self.config.quarantine_keyword,
                ]
            )
        except _EXPECTED as exc:
            raise _translate(exc) from exc
        # "N:*" always matches the highest UID, even when it is below N (RFC 3501).
        return sorted(uid for uid in found if uid > after_uid)

    def fetch(self, uids: Sequence[int]) -> Iterator[RawMessage]:
        """Fetch full messages without setting \\Seen."""
        if not uids:
            return
        try:
            data = self.client.fetch(list(uids), ["BODY.PEEK[]", "INTERNALDATE"])
        except _EXPECTED as exc:
            raise _translate(exc) from exc
        for uid in uids:
            item = data.get(uid)
            if item is None:  # expunged by someone else meanwhile
                continue
            raw = item.get(b"BODY[]") or b""
            when = item.get(b"INTERNALDATE")
            if not isinstance(when, datetime):
                when = datetime.now(UTC)
            elif when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            yield RawMessage(uid=uid, raw=bytes(raw), received_at=when.astimezone(UTC))

    def add_keyword(self, uids: Sequence[int], keyword: str) -> None:
        if not uids or (self.state is not None and not self.state.keywords_allowed):
            return
        try:
            for start in range(0, len(uids), 500):
                self.client.add_flags(
                    list(uids[start : start + 500]), [keyword.encode()], silent=True
                )
        except _EXPECTED as exc:
            raise _translate(exc) from exc

    def sent_folder(self) -> str:
        """The folder for copies of sent mail: configured, else SPECIAL-USE \\Sent, else 'Sent'."""
        if self.config.sent_folder:
            name = self.config.sent_folder
        else:
            try:
                name = self.client.find_special_folder(SPECIAL_USE_SENT) or "Sent"
            except _EXPECTED as exc:
                raise _translate(exc) from exc
        try:
            if not self.client.folder_exists(name):
                self.client.create_folder(name)
        except _EXPECTED as exc:
            raise _translate(exc) from exc
        return str(name)

    def append_many(self, folder: str, raws: Sequence[bytes]) -> None:
        """APPEND several messages, 100 per MULTIAPPEND command where the server offers it."""
        try:
            if b"MULTIAPPEND" in self.client.capabilities():
                for start in range(0, len(raws), 100):
                    chunk = raws[start : start + 100]
                    self.client.multiappend(
                        folder, [{"msg": r, "flags": [b"\\Seen"]} for r in chunk]
                    )
                return
        except _EXPECTED as exc:
            raise _translate(exc) from exc
        for raw in raws:
            self.append(folder, raw)

    def append(self, folder: str, raw: bytes, when: datetime | None = None) -> None:
        try:
            self.client.append(folder, raw, flags=[b"\\Seen"], msg_time=when)
        except _EXPECTED as exc:
            raise _translate(exc) from exc

    def label_folders(self, labels: Sequence[str]) -> dict[str, str]:
        """Folder name per label under `label_folders` (created when missing); {} if disabled."""
        prefix = self.config.label_folders.strip("/")
        if not prefix:
            return {}
        try:
            delimiter = self.client.list_folders(directory="", pattern="")[0][1]
            sep = delimiter.decode() if isinstance(delimiter, bytes) else str(delimiter or "/")
            folders = {}
            for label in labels:
                name = sep.join([*prefix.split("/"), label])
                if not self.client.folder_exists(name):
                    self.client.create_folder(name)
                    self.client.subscribe_folder(name)
                folders[label] = name
            return folders
        except _EXPECTED as exc:
            raise _translate(exc) from exc

    def message_ids_in(self, folder: str, skip_keyword: str) -> dict[int, str]:
        """Message-IDs (without brackets) of messages in `folder` lacking `skip_keyword`.

        Selects `folder`; call `select()` afterwards to return to the watched folder.
        """
        try:
            self.client.select_folder(folder)
            uids = self.client.search(["UNKEYWORD", skip_keyword])
            if not uids:
                return {}
            data = self.client.fetch(uids, ["BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"])
        except _EXPECTED as exc:
            raise _translate(exc) from exc
        found = {}
        for uid, item in data.items():
            header = next((v for k, v in item.items() if k.startswith(b"BODY[HEADER")), b"")
            ids = _MESSAGE_ID.findall(bytes(header).decode("ascii", "replace"))
            found[int(uid)] = ids[0] if ids else ""
        return found

    def mark_in_selected(self, uids: Sequence[int], keyword: str) -> None:
        try:
            if uids:
                self.client.add_flags(list(uids), [keyword.encode()], silent=True)
        except _EXPECTED as exc:
            raise _translate(exc) from exc

    def wait_for_change(
        self,
        seconds: float,
        wake: threading.Event,
        stop: threading.Event,
        beat: Callable[[], None] = lambda: None,
    ) -> bool:
        """Block until the folder changes, `wake` or `stop` is set, or `seconds` pass.

        Uses IDLE when the server offers it (re-issued by the caller well within the
        29-minute limit), otherwise sleeps and then polls with NOOP. Returns True when the
        server reported a change. `beat` is called every half second while waiting (the
        watcher's heartbeat for the systemd watchdog).
        """
        if wake.is_set() or stop.is_set():
            return False
        state = self.state
        client = self.client
        if self._pending_change():
            return True
        deadline = time.monotonic() + seconds
        try:
            if state is not None and state.supports_idle and self.config.idle:
                client.idle()
                gone: str | None = None
                try:
                    while time.monotonic() < deadline:
                        if wake.is_set() or stop.is_set():
                            return False
                        beat()
                        responses = client.idle_check(timeout=0.5)
                        if any(r and r[0] == b"BYE" for r in responses):
                            gone = "the server ended the session (BYE)"
                        elif not responses and _peer_closed(client.socket()):
                            gone = "the server closed the connection"
                        if gone:
                            raise ImapTransient(gone)
                        if any(len(r) > 1 and r[1] in _CHANGE for r in responses):
                            return True
                    return False
                finally:
                    if gone is None:
                        client.idle_done()
            while time.monotonic() < deadline:
                beat()
                if wake.wait(min(0.5, max(0.0, deadline - time.monotonic()))) or stop.is_set():
                    return False
            client.noop()
            return True
        except _EXPECTED as exc:
            raise _translate(exc) from exc

    def _pending_change(self) -> bool:
        """Whether the server already announced new mail in reply to an earlier command.

        Dovecot sends `* N EXISTS` with the response to whatever command comes next (a STORE,
        an APPEND to Sent...). imaplib keeps such untagged responses; an IDLE started after
        them would wait for a notice that has already come, so look before idling.
        """
        pending = getattr(getattr(self._client, "_imap", None), "untagged_responses", None)
        if not isinstance(pending, dict):
            return False
        changed = False
        for name in ("EXISTS", "RECENT"):
            if pending.pop(name, None):
                changed = True
        return changed

    def close(self) -> None:
        client, self._client = self._client, None
        self.state = None
        if client is None:
            return
        try:
            client.logout()
        except Exception:  # noqa: BLE001 - the connection may already be gone
            with contextlib.suppress(Exception):
                client.shutdown()
