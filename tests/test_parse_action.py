"""envs.base.parse_action: bounded in length and depth, so garbage fails as ActionParseError only."""
import pytest

from cassandra_wm.envs.base import MAX_ACTION_CHARS, MAX_ACTION_DEPTH, ActionParseError, coerce_action, parse_action


@pytest.mark.parametrize("text", [
    "set_price(price=" + "-" * 20_000 + "1)",
    "set_price(price=" + "-" * 20_000,
    "set_price(price=" + "(" * 5_000 + "1" + ")" * 5_000 + ")",
    "set_price(price=" + "[" * 300 + "]" * 300 + ")",
    "set_price(price=" + "-" * 3_000 + "1)",          # short enough to parse, too deep to evaluate
    "set_price(price=" + "not " * 900 + "1)",
    "set_price(price=" + "9" * 5_000 + ")",            # past Python's digit limit for int()
    "f(" + ", ".join(f"a{i}={i}" for i in range(2_000)) + ")",
    "x" * (MAX_ACTION_CHARS + 1),
])
def test_hostile_action_text_is_a_parse_error(text):
    with pytest.raises(ActionParseError) as e:
        parse_action(text)
    assert len(str(e.value)) < 400  # the message quotes a bounded prefix, never the whole text
    with pytest.raises(ActionParseError):
        coerce_action(text)


def test_ordinary_actions_still_parse():
    assert parse_action("set_price(price=-3.5)") == {"name": "set_price", "args": {"price": -3.5}}
    assert parse_action("wait") == {"name": "wait", "args": {}}
    nested = "f(x=" + "[" * (MAX_ACTION_DEPTH - 4) + "1" + "]" * (MAX_ACTION_DEPTH - 4) + ")"
    assert parse_action(nested)["name"] == "f"
    assert parse_action("place(x=0, y=9, type='ride', subtype='carousel', subclass='yellow', price=3.0)")["args"][
        "subtype"] == "carousel"
