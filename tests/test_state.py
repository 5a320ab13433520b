"""The app's URL state: round trips, fallbacks for garbage, hide= and embed=."""

import random

import pytest

from app import state as schema


def random_state(rng: random.Random) -> dict:
    out = {}
    for name, f in schema.FIELDS.items():
        if f.kind == "int":
            out[name] = rng.randint(int(f.low), int(f.high))
        elif f.kind == "float":
            out[name] = round(rng.uniform(f.low, f.high), 4)
        elif f.kind == "choice":
            out[name] = rng.choice(f.choices)
        elif f.kind == "multi":
            out[name] = tuple(rng.sample(f.choices, rng.randint(1, len(f.choices))))
        else:
            out[name] = rng.random() < 0.5
    return out


@pytest.mark.parametrize("seed", range(50))
def test_state_url_state_round_trip_is_identity(seed):
    state = random_state(random.Random(seed))
    query = schema.to_query(state)
    back, warnings = schema.parse(query)
    assert warnings == [] and back == state


def test_defaults_give_an_empty_query_and_parse_back():
    assert schema.to_query(schema.DEFAULTS) == {}
    assert schema.parse({}) == (schema.DEFAULTS, [])


@pytest.mark.parametrize(
    "params,field,needle",
    [
        ({"lr": "fast"}, "lr", "lr must be a number"),
        ({"lr": "99"}, "lr", "lr must be in [0.005, 0.5]"),
        ({"lr": "nan"}, "lr", "lr must be in"),
        ({"steps": "3.5"}, "steps", "steps must be an integer"),
        ({"inits": "-4"}, "inits", "inits must be in [1, 16]"),
        ({"preset": "nope"}, "preset", "preset must be one of"),
        ({"objectives": "forward_kl,bogus"}, "objectives", "comma-separated subset"),
        ({"objectives": ""}, "objectives", "comma-separated subset"),
        ({"modes": "7"}, "modes", "modes must be in [1, 6]"),
    ],
)
def test_garbage_falls_back_for_that_value_only(params, field, needle):
    state, warnings = schema.parse({**params, "seed": "42"})
    assert state[field] == schema.DEFAULTS[field]
    assert state["seed"] == 42  # the good value is kept
    assert len(warnings) == 1 and needle in warnings[0]


def test_unknown_keys_warn_and_lists_take_the_last_value():
    state, warnings = schema.parse({"zzz": "1", "lr": ["0.1", "0.2"]})
    assert state["lr"] == 0.2 and len(warnings) == 1 and "zzz" in warnings[0]


def test_hide_and_embed():
    assert schema.hidden_controls({"hide": "lr,steps,bogus"}) == {"lr", "steps"}
    assert schema.is_embed({"embed": "true"}) and not schema.is_embed({})
    assert schema.to_query(schema.DEFAULTS, {"hide": "lr"}) == {"hide": "lr"}
    # reserved keys are not controls and raise no warning
    assert schema.parse({"hide": "lr", "embed": "true"}) == (schema.DEFAULTS, [])


def test_objective_order_is_kept_and_duplicates_dropped():
    state, _ = schema.parse({"objectives": "reverse_kl,jsd,reverse_kl"})
    assert state["objectives"] == ("reverse_kl", "jsd")
