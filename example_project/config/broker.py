"""kombu's file-system broker transport, with messages published atomically.

kombu's ``filesystem`` transport (5.x) creates each message file in the queue
folder and only then writes the message into it. A worker polling the folder
at that moment takes the still-empty file, cannot decode it and stops with
"Unrecoverable error: JSONDecodeError('Expecting value: line 1 column 1 (char 0)')",
and the message is lost (kombu issue #1551). The more processes publish, the
likelier it is: the web server, the worker's own chains and ``celery beat``'s
ticks all do here.

This transport writes a message under a name the readers skip
(``<name>.msg.part``), then renames it into place: a rename within one folder
is atomic, so readers only ever see complete messages. A file that still does
not decode (left by another publisher) is logged and dropped instead of
stopping the worker.

Selected by ``CELERY_BROKER_TRANSPORT`` in ``config/settings.py`` when the
broker URL is ``filesystem://``; every process (web, worker, beat) loads it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from queue import Empty
from time import monotonic
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps

logger = logging.getLogger(__name__)


class Channel(filesystem.Channel):
    def _put(self, queue: str, payload: Any, **kwargs: Any) -> None:
        """Put ``payload`` onto ``queue``: written aside, then renamed into the queue folder."""
        # The name kombu gives: readers take "<ms>_<uuid>.<queue>.msg" in name order.
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        partial = f"{final}.part"  # ends in ".msg.part": not a message of any queue
        try:
            with open(partial, "wb") as f:
                f.write(str_to_bytes(dumps(payload)))
            os.replace(partial, final)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(partial)
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc

    def _get(self, queue: str) -> Any:
        try:
            return super()._get(queue)
        except ValueError:  # JSONDecodeError: an incomplete file of another publisher
            logger.error("Dropped a message file of queue %r that does not decode.", queue)
            raise Empty() from None


class Transport(filesystem.Transport):
    Channel = Channel
