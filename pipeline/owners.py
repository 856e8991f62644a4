"""Whom a task is for, and who submitted it.

A submission may name the end user it is for (``user_id``, optionally
``tenant_id``): a backend says so with its service token, a browser's user
token says so by itself. The task record keeps both, with ``submitted_by``
(the name of the token, or ``scheduler``, ``cli``, ``python``, ``task:<id>``
for a task started by another task), and the user's own index lists the
user's tasks (:meth:`pipeline.state.keys.Keys.index_owner`). The message
carries the owner too, so the task knows whom it works for (a conversation
belongs to the user who started it; a user's tasks share the user's rate
limit) and the tasks it starts belong to the same user.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Optional

from pipeline.errors import InvalidArguments

#: User and tenant ids: they are part of Redis key names and URLs.
OWNER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@:-]{0,127}$")
OWNER_ID_HELP = "letters, digits, _ . @ : - (at most 128 characters, starting with a letter or digit)"
#: The message option holding the owner.
OPTION = "owner"
#: ``submitted_by`` of a submission made in-process (Python API) outside any task.
LOCAL = "python"


@dataclass(frozen=True)
class Owner:
    user_id: Optional[str] = None
    tenant_id: Optional[str] = None
    submitted_by: Optional[str] = None

    def check(self) -> "Owner":
        """Refuse ids that could not be key names (InvalidArguments naming the field)."""
        for name in ("user_id", "tenant_id"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, str) and OWNER_ID.match(value)):
                raise InvalidArguments(f"invalid {name}", {name: f"must be {OWNER_ID_HELP}"})
        if self.tenant_id is not None and self.user_id is None:
            raise InvalidArguments("tenant_id without user_id", {"tenant_id": "give user_id too"})
        return self

    def fields(self) -> dict[str, str]:
        """The record's owner fields (those that are set)."""
        return {name: value for name, value in (("user_id", self.user_id), ("tenant_id", self.tenant_id),
                                                ("submitted_by", self.submitted_by)) if value is not None}

    def options(self) -> dict[str, Any]:
        """The message options carrying the owner ({} for nobody's task)."""
        fields = self.fields()
        return {OPTION: fields} if fields else {}

    @classmethod
    def of_message(cls, message) -> "Owner":
        carried = message.options.get(OPTION)
        if not isinstance(carried, dict):
            return NOBODY
        return cls(carried.get("user_id"), carried.get("tenant_id"), carried.get("submitted_by"))

    @classmethod
    def of_record(cls, record: dict, submitted_by: Optional[str] = None) -> "Owner":
        """The record's user and tenant; *submitted_by* (the one acting now) or the record's."""
        return cls(record.get("user_id"), record.get("tenant_id"), submitted_by or record.get("submitted_by"))


NOBODY = Owner()
