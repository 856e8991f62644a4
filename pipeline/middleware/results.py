"""Results readable the Dramatiq way, written by TaskState.

``message.get_result(backend=...)`` and ``Results`` work as usual, but the
value is stored by TaskState's finishing script, in the same Redis round
trip as the state change, instead of in a second one here.
"""

from __future__ import annotations

from dramatiq.results import Results


class StateStoreResults(Results):
    def after_process_message(self, broker, message, *, result=None, exception=None):
        pass

    def after_skip_message(self, broker, message):
        pass

    def after_nack(self, broker, message):
        pass
