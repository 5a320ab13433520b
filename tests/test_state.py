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


HOSTILE_VALUES = [
    "9" * 40,  # int() works, float() overflows: OverflowError before the fix
    "9" * 5000,  # beyond Python's int conversion limit
    "1e400", "-1e400", "nan", "inf", "-inf", "1e-400", "0x10", "٣", "１２", "\x00", "\n", " ", "",
    "x" * 10_000,
    "![px](http://host/pixel.png)", "[Log in again](http://evil.example/login)", "**bold**", "<img src=x>",
    "`code`", "<script>alert(1)</script>", "javascript:alert(1)", "$x^2$", ":red[red]",
]  # fmt: skip


@pytest.mark.parametrize("name", ["steps", "lr", "preset", "objectives", "lesson_step", "m3", "w2"])
@pytest.mark.parametrize("value", HOSTILE_VALUES, ids=range(len(HOSTILE_VALUES)))
def test_hostile_values_fall_back_with_an_inert_warning(name, value):
    state, warnings = schema.parse({name: value})
    field = schema.FIELDS[name]
    if not warnings:  # a value that happens to be valid ("1e-400" is 0.0, a mean in range): kept as parsed
        assert state[name] == field.parse(value)
        return
    assert state[name] == field.default
    (warning,) = warnings
    assert warning.startswith(f"Ignored URL value: {name} must be")
    assert field.allowed() in warning or f"[{field.low:g}, {field.high:g}]" in warning
    assert len(warning) < 400
    # the value shows only inside one code span (Markdown and HTML are inert there), without backticks or
    # line breaks of its own
    outside = warning.split("`")[::2]
    for piece in ("![", "](", "**", "<img", "<script", "javascript:", "$x", ":red["):
        if piece in value:
            assert all(piece not in part for part in outside), (piece, warning)
    assert "\n" not in warning


def test_unknown_keys_are_quoted_and_counted_in_one_warning():
    state, warnings = schema.parse({f"![k{i}](http://x/{i}.png)": "1" for i in range(10)})
    assert state == schema.DEFAULTS
    (warning,) = warnings
    assert "and 7 more" in warning and warning.count("`") == 6


def test_repeated_keys_take_the_last_value_and_empty_lists_fall_back():
    assert schema.parse({"steps": ["100", "200"]})[0]["steps"] == 200
    state, warnings = schema.parse({"steps": []})
    assert state["steps"] == schema.DEFAULTS["steps"] and len(warnings) == 1


def test_quote_cuts_and_neutralises():
    assert schema.quote("a" * 100) == "`" + "a" * 40 + "…`"
    assert schema.quote("`x`\ny") == "`'x' y`"
    assert schema.quote("   ") == "an empty value"
