"""The queue contract against the backend that ``--forerunner-queue`` names.

The URL may also come from ``$FORERUNNER_QUEUE_URL``.

Collected by ``pytest --pyargs forerunner_queue_tests``; every test comes from
:class:`~forerunner_queue_tests.contract.QueueContract`.
"""

from __future__ import annotations

from forerunner_queue_tests.contract import QueueContract


class TestQueueContract(QueueContract):
    pass
