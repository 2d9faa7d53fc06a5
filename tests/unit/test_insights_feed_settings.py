"""The feed's linger is kept well inside the consumer's ack_wait."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.insights.settings import InsightsSettings


def test_a_linger_beyond_a_quarter_of_ack_wait_is_refused_at_start() -> None:
    # The notices in hand wait the linger unacknowledged: applying them needs the rest.
    with pytest.raises(ValidationError, match="quarter of ack_wait_seconds"):
        InsightsSettings(feed_linger_seconds=8.0, ack_wait_seconds=30.0)
    assert InsightsSettings(feed_linger_seconds=7.5, ack_wait_seconds=30.0).feed_linger_seconds
    assert InsightsSettings(feed_linger_seconds=0.0).feed_linger_seconds == 0.0
