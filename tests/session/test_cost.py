"""Cost: the user's price table over genai-prices, unknown as None, the session total, the budget;
in a real shell against the test server (status line, log column, %complete_log, the refusal)."""

from __future__ import annotations

import pytest
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output
from traitlets import TraitError
from traitlets.config import Config

from jupyter_openai.errors import ConfigurationError
from jupyter_openai.offline.server import MODEL_ALIAS
from jupyter_openai.session import cost
from jupyter_openai.session.cost import Pricing, check_table, money, session_total
from jupyter_openai.session.log import COLUMNS

OPENAI = "https://api.openai.com/v1"
USAGE = {"prompt_tokens": 1000, "completion_tokens": 100, "total_tokens": 1100}


def test_the_price_database_prices_openai_models() -> None:
    from genai_prices import Usage, calc_price

    expected = float(calc_price(Usage(input_tokens=1000, output_tokens=100), model_ref="gpt-4o-mini",
                                provider_id="openai").total_price)
    assert expected > 0
    assert Pricing().cost("gpt-4o-mini", USAGE, OPENAI) == pytest.approx(expected)


def test_the_users_table_wins_over_the_database() -> None:
    pricing = Pricing({"gpt-4o-mini": (2.0, 10.0), "my-model": {"input": 1, "output": 3}, "flat": 5})
    assert pricing.cost("gpt-4o-mini", USAGE, OPENAI) == pytest.approx((1000 * 2 + 100 * 10) / 1e6)
    assert pricing.cost("my-model", USAGE, "http://127.0.0.1:9/v1") == pytest.approx((1000 + 300) / 1e6)
    assert pricing.cost("flat", USAGE) == pytest.approx(1100 * 5 / 1e6)


@pytest.mark.parametrize(("model", "usage", "base_url"), [
    ("no-such-model-anywhere", USAGE, OPENAI),  # the database does not know it
    ("gpt-4o-mini", USAGE, "http://127.0.0.1:9/v1"),  # another server's gpt-4o-mini is not OpenAI's price
    ("gpt-4o-mini", None, OPENAI),  # no usage reported
    ("gpt-4o-mini", {"prompt_tokens": "many"}, OPENAI),
    (None, USAGE, OPENAI),
])
def test_unknown_is_none_never_zero(model: str | None, usage: dict | None, base_url: str) -> None:
    assert Pricing().cost(model, usage, base_url) is None


def test_the_offline_model_is_free_and_the_database_can_be_left_out() -> None:
    assert MODEL_ALIAS in cost.FREE_MODELS
    assert Pricing().cost(MODEL_ALIAS, USAGE, "http://127.0.0.1:9/v1") == 0.0
    assert Pricing().cost(MODEL_ALIAS, None) == 0.0  # its streams report no usage: still free
    assert Pricing({MODEL_ALIAS: (1, 1)}).cost(MODEL_ALIAS, USAGE) == pytest.approx(1100 / 1e6)
    assert Pricing(use_database=False).cost("gpt-4o-mini", USAGE, OPENAI) is None


@pytest.mark.parametrize("entry", [(1,), (1, -1), "cheap", (True, 1), {"input": 1}])
def test_a_malformed_price_is_refused(entry: object) -> None:
    with pytest.raises(ConfigurationError, match="per million tokens"):
        check_table({"m": entry})


def test_budget_and_total_read_the_log() -> None:
    log = [{"cost_usd": 0.25}, {"cost_usd": None}, {"cost_usd": 0.5}]
    assert session_total(log) == 0.75
    Pricing(max_cost_usd=1.0).check_budget(log)
    with pytest.raises(ConfigurationError, match=r"budget spent: .*\$0\.75 of max_cost_usd \$0\.50"):
        Pricing(max_cost_usd=0.5).check_budget(log)
    Pricing().check_budget(log)  # no budget: never refused


@pytest.mark.parametrize("value", [-1, 0, float("nan"), float("inf"), "1", True, [1]])
def test_a_budget_that_is_not_a_positive_number_is_refused(value: object) -> None:
    with pytest.raises(ConfigurationError, match=r"^max_cost_usd must be a number of US dollars > 0, or None"):
        Pricing(max_cost_usd=value)  # type: ignore[arg-type]
    pricing = Pricing(max_cost_usd=2)
    with pytest.raises(ConfigurationError, match="max_cost_usd must be"):
        pricing.max_cost_usd = value  # type: ignore[assignment]
    assert pricing.max_cost_usd == 2.0


def test_an_estimate_is_the_prompt_at_four_characters_a_token_and_the_most_output() -> None:
    pricing = Pricing({"m": (1e6, 2e6)})  # $1 an input token, $2 an output token
    assert pricing.estimate("m", ["abcdefgh", None, "x"], {"max_tokens": 10, "n": 2}) == 3 + 2 * 10 * 2
    assert pricing.estimate("m", ["abcd"], {"max_output_tokens": 16}) == 1 + 16 * 2
    assert pricing.estimate("m", [], {"max_tokens": 5, "best_of": 3, "n": 2}) == 5 * 3 * 2
    assert pricing.estimate("m", [], {}) == cost.UNBOUNDED_OUTPUT * 2
    assert pricing.estimate("unknown", ["abcd"], {"max_tokens": 5}) is None


def test_running_calls_hold_their_estimate_against_the_budget() -> None:
    pricing, log = Pricing(max_cost_usd=1.0), [{"cost_usd": 0.25}]
    with pricing.reserve(log, 0.5):
        with pricing.reserve(log, lambda: 0.5):  # 0.75 < 1: sent
            with pytest.raises(ConfigurationError, match=r"cost \$0\.25 \(and \$1\.00 reserved by 2 call\(s\) still "
                                                          r"running\) of max_cost_usd \$1\.00"):
                pricing.check_budget(log)
        pricing.check_budget(log)  # the second one's estimate is released
        pricing.check_budget([])  # another log: its own budget
        with pricing.reserve(log, None):  # unknown: holds nothing
            pass
    with pytest.raises(ConfigurationError), pricing.reserve(log, 0.1):
        raise ConfigurationError("a failing call releases its estimate too")
    assert pricing.reserved(log) == 0 and not pricing._reserved
    Pricing().check_budget(log)  # no budget: nothing reserved, nothing asked
    with Pricing().reserve(log, lambda: pytest.fail("no budget: no estimate")):
        pass


def test_money() -> None:
    assert [money(v) for v in (None, 0, 0.000123, 0.5, 12.345)] == ["?", "$0", "$0.000123", "$0.50", "$12.35"]


def test_cost_is_a_log_column_after_the_original_ones() -> None:
    """Appended, so older log files and DataFrames keep their column order."""
    assert "cost_usd" in COLUMNS[COLUMNS.index("params") + 1:]


# -- in a shell ----------------------------------------------------------------------------------
def _shell(make_shell: object, **traits: object) -> object:
    config = Config()
    config.CompleteMagics.model = "fake-chat"
    for name, value in traits.items():
        setattr(config.CompleteMagics, name, value)
    return make_shell(config)  # type: ignore[operator]


def test_priced_calls_show_cost_in_the_status_line_log_and_total(make_shell: object) -> None:
    ip = _shell(make_shell, prices={"fake-chat": (1.0, 2.0)})
    from jupyter_openai.session.log import session_log

    with capture_output() as cap:
        ip.run_cell("%complete one two three")
        ip.run_cell("%complete -m davinci-002 one two")  # not in the table, another server: unknown
    first, second = session_log[-2], session_log[-1]
    assert first["cost_usd"] == pytest.approx((3 * 1 + 4 * 2) / 1e6)
    assert second["cost_usd"] is None
    status = [o.data["text/plain"] for o in cap.outputs if "finish:" in o.data.get("text/plain", "")]
    assert status[0].endswith(f"finish: stop · {money(first['cost_usd'])}") and "$" not in status[1]
    with capture_output() as cap:
        ip.run_cell("%complete_log")
    assert f"Session cost: {money(first['cost_usd'])} over 2 call(s) (1 of unknown cost)" in cap.stdout


def test_the_budget_refuses_calls_in_one_line_and_sends_nothing(make_shell: object, server: object) -> None:
    ip = _shell(make_shell, prices={"fake-chat": (1e6, 1e6)}, max_cost_usd=5.0)  # $1 a token
    with capture_output():
        ip.run_cell("%complete one two three")
    sent = len(server.requests)  # type: ignore[attr-defined]
    with pytest.raises(UsageError, match=r"^budget spent: this session's calls cost \$\d+\.\d\d of max_cost_usd"):
        ip.run_cell("%complete again")
    assert len(server.requests) == sent  # type: ignore[attr-defined]
    ip.run_line_magic("config", "CompleteMagics.max_cost_usd = None")
    with capture_output():
        ip.run_cell("%complete again")
    assert len(server.requests) == sent + 1  # type: ignore[attr-defined]


def test_a_budget_below_zero_is_a_trait_error_and_calls_still_go(make_shell: object, server: object,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    ip = _shell(make_shell)
    magics = ip.magics_manager.registry["CompleteMagics"]  # type: ignore[attr-defined]
    with pytest.raises(TraitError, match=r"max_cost_usd must be a number of US dollars > 0"):
        magics.max_cost_usd = -1
    ip.run_line_magic("config", "CompleteMagics.max_cost_usd = -1")  # type: ignore[attr-defined]
    assert [r.getMessage() for r in caplog.records] == [  # %config reports a trait's error as one line
        "max_cost_usd must be a number of US dollars > 0, or None for no limit; got -1.0"]
    assert magics.max_cost_usd is None and cost.pricing.max_cost_usd is None
    with capture_output():
        ip.run_cell("%complete hello")  # type: ignore[attr-defined]
    assert len(server.requests) == 1  # type: ignore[attr-defined]


def test_calls_running_at_once_cannot_pass_the_budget_together(make_shell: object, server: object) -> None:
    """--compare sends 4 calls at once; each reserves its most (2 prompt tokens and 10 output tokens at
    $0.01 a token: $0.12) before it is sent, so against $0.15 two go and the others are refused
    (sent at once, each would have passed a check of the spent total alone: $0 until one ends)."""
    ip = _shell(make_shell, prices={"fake-chat": (1e4, 1e4)}, max_cost_usd=0.15)
    server.add_fault(path="/chat", delay=1.0, times=None)  # type: ignore[attr-defined]  # all in flight at once
    with capture_output() as cap:
        ip.run_cell("%%complete --compare -t 0,0.5,1,1.5 --max-tokens 10\nhello")  # type: ignore[attr-defined]
    assert len(server.requests) == 2, cap.stderr  # type: ignore[attr-defined]
    assert cap.stderr.startswith("2 call(s) not sent: budget spent: this session's calls cost $0")
    assert "reserved by" in cap.stderr and cost.pricing.reserved(ip.magics_manager.registry["CompleteMagics"].log) == 0  # type: ignore


def test_a_malformed_price_table_is_a_trait_error(make_shell: object) -> None:
    ip = _shell(make_shell)
    magics = ip.magics_manager.registry["CompleteMagics"]  # type: ignore[attr-defined]
    with pytest.raises(TraitError, match="per million tokens"):
        magics.prices = {"m": "cheap"}
    magics.prices = {"m": (1, 2)}
    assert cost.pricing.table == {"m": (1.0, 2.0)}
