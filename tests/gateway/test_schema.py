"""Whatever arrives on the gateway's topics is a hit, an action or a dead letter with its reason: never an
exception in the flow (one would stop every desk, and recovery would replay it for ever)."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from feblam.model import DeadLetter, PayloadBatch
from flows.pipeline import FlowStats
from gateway.flow import ACTION, HIT, make_decoder, utc_now
from gateway.horizon import Horizon
from gateway.schema import read_hit
from gateway.settings import Desks
from tests.support.gateway import ACTION_KEY, gateway_settings, hit_doc, replaced

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=10,
)


def decoder() -> Any:
    s = gateway_settings()
    return make_decoder(
        Desks(s.desks, s.gateway), FlowStats(), s.gateway.max_message_bytes, ACTION_KEY, Horizon(utc_now)
    )


def decode(kind: str, payloads: list[bytes]) -> list[Any]:
    return decoder()(PayloadBatch(kind, "t.hits", 0, payloads, list(range(len(payloads)))))


def paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += paths(v, (*prefix, i))
    return out


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([HIT, ACTION]), st.binary(max_size=300))
def test_any_bytes_give_an_item_or_a_dead_letter(kind: str, payload: bytes) -> None:
    (out,) = decode(kind, [payload])
    assert isinstance(out, DeadLetter) or (isinstance(out, tuple) and out[1][0] == kind)


SHAPE = paths(hit_doc())


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(SHAPE), json_values)
def test_a_hit_with_any_field_of_any_type_is_routed_or_dead_lettered(path: tuple[Any, ...], value: Any) -> None:
    payload = orjson.dumps(replaced(hit_doc(), path, value))
    (out,) = decode(HIT, [payload])
    if isinstance(out, DeadLetter):
        assert out.error.startswith("hit: ") and out.payload == payload
    else:
        hit_id, (kind, (doc, routes, _appended)) = out
        assert kind == HIT and isinstance(doc["read"]["camera_id"], str) and isinstance(routes, list)
        assert doc["read"]["lat"] is None or isinstance(doc["read"]["lat"], float)


def test_the_shapes_that_stopped_every_desk_are_dead_letters_with_their_reason() -> None:
    bad = [
        replaced(hit_doc(), ("matches", 0), "SIS-II"),  # a string where a match goes (serde called m.get)
        replaced(hit_doc(), ("read", "camera_id"), 42),  # a number camera (routing called .startswith)
        replaced(hit_doc(), ("read", "lat"), "50.8"),  # a string latitude (the page called toFixed)
        replaced(hit_doc(), ("read", "plate"), "A" * 17),  # no country issues such a plate
        replaced(hit_doc(), ("emitted_at",), "yesterday"),
    ]
    out = decode(HIT, [orjson.dumps(d) for d in bad] + [b"x" * 300_000])
    assert all(isinstance(o, DeadLetter) for o in out)
    reasons = [o.error for o in out]
    assert reasons[0].startswith("hit: matches[0]:") and reasons[1].startswith("hit: read.camera_id:")
    assert reasons[2].startswith("hit: read.lat:") and reasons[3].startswith("hit: read.plate:")
    assert "emitted_at" in reasons[4] and "max_message_bytes" in reasons[5]


def test_a_good_hit_keeps_exactly_the_checked_fields() -> None:
    doc = hit_doc(plate="1ABC123") | {"unchecked": {"anything": 1}}
    got = read_hit(orjson.dumps(doc), 1 << 20)
    assert "unchecked" not in got and got["hit_id"] == doc["hit_id"] and got["read"]["plate"] == "1ABC123"
