"""The capture vocabulary: a pair's answers by proxy, whichever role each played."""

from __future__ import annotations

import json

import pytest

from harness.store.pair_json import pair_from_dict, pair_to_dict
from tests.harness.builders import chat_observation, make_pair


@pytest.mark.parametrize("sdk_primary", [True, False])
def test_a_pair_names_each_proxy_whichever_answered_the_client(sdk_primary: bool) -> None:
    sdk = chat_observation(target="sdk")
    legacy = chat_observation(target="legacy")
    repeat = chat_observation(target="legacy")
    primary, shadow = (sdk, legacy) if sdk_primary else (legacy, sdk)
    pair = make_pair(primary, shadow, repeat=repeat)
    assert pair.sdk is sdk and pair.legacy is legacy and pair.legacy_repeat is repeat


def test_an_unmirrored_pair_lacks_the_shadow_proxy_only() -> None:
    sdk_primary = make_pair(chat_observation(target="sdk"), None)
    assert sdk_primary.sdk is sdk_primary.primary and sdk_primary.legacy is None
    legacy_primary = make_pair(chat_observation(target="legacy"), None)
    assert legacy_primary.legacy is legacy_primary.primary and legacy_primary.sdk is None
    assert legacy_primary.legacy_repeat is None


def test_the_proxies_are_derived_not_stored() -> None:
    pair = make_pair(
        chat_observation(target="legacy"),
        chat_observation(target="sdk"),
        repeat=chat_observation(target="legacy"),
    )
    data = pair_to_dict(pair)
    assert not {"sdk", "legacy", "legacy_repeat"} & set(data)
    read = pair_from_dict(json.loads(json.dumps(data)))
    assert read == pair
    assert (read.sdk, read.legacy, read.legacy_repeat) == (
        pair.shadow,
        pair.primary,
        pair.shadow_repeat,
    )
