"""Burn-rate alerts on the refusal SLO (docs/metrics.md §9): hand-computed scenarios, the window rule, the
guards, the alert object and the snapshot the exports and the dashboard read."""

from __future__ import annotations

import datetime as dt

import pytest
from alert_scenarios import (
    POLICY,
    SLOW_AT,
    SPIKE_AT,
    WORKLOAD,
    M,
    add_sessions,
    build_slow_burn,
    build_spike,
    build_tiny,
)
from analytics_db import AttemptDB

from analytics.alerts import NOTHING_TO_WATCH, burn_table, changes, evaluate, rule_windows
from analytics.collect import collect
from analytics.summary import chain_table
from analytics.windows import Window, window_counts, window_period
from fallbackscope.core.errors import UsageError
from fallbackscope.core.policy import DEFAULT_ALERT_RULES, parse_policy_toml

# Wilson 95% lower bounds (z = 1.959964), worked out with the formula
#   low = (p + z²/2n − z·√(p(1−p)/n + z²/4n²)) / (1 + z²/n)
# e.g. 38 of 40: p = 0.95, z²/n = 0.09604, centre = (0.95 + 0.04802) / 1.09604 = 0.910569,
#      half = 1.959964 · √(0.0011875 + 0.00060025) / 1.09604 = 0.075607  →  low = 0.834961
LOW_38_OF_40 = 0.834961
LOW_29_OF_288 = 0.071028
LOW_3_OF_4 = 0.300642


@pytest.fixture(scope="module")
def spike(tmp_path_factory) -> AttemptDB:
    """The spike database (alert_scenarios.build_spike) with POLICY stored, plus one refused session of another
    workload 3 minutes before the end; built once for the tests that only read it."""
    db = AttemptDB(tmp_path_factory.mktemp("spike") / "spike.duckdb")
    build_spike(db)
    db.add("other", 1, SPIKE_AT - 3 * M, outcome="refusal", workload="other")
    db.set_policy(POLICY)
    yield db
    db.close()


def firing(evaluation) -> set[tuple[str, str]]:
    return {(a.check.rule.severity, a.check.rule.name) for a in evaluation.alerts}


def checks(evaluation) -> dict[str, object]:
    return {c.rule.name: c for c in evaluation.checks}


def test_a_spike_pages_on_1h_5m_and_nothing_else(spike):
    ev = evaluate(spike.writer)
    assert ev.at == SPIKE_AT  # the latest attempt: the burst's last session
    c = checks(ev)
    page = c["1h/5m ×14.4"]
    # 5m: 10 of 10 refused → 1.0 / 0.05 = 20 ≥ 14.4
    assert (page.short.refused_sessions, page.short.sessions) == (10, 10)
    assert page.short.burn == pytest.approx(20.0)
    # 1h: 38 of 40 → 0.95 / 0.05 = 19 ≥ 14.4; lower bound 0.834961 / 0.05 = 16.70 ≥ 14.4; 40 ≥ 10 sessions
    assert (page.long.refused_sessions, page.long.sessions) == (38, 40)
    assert page.long.burn == pytest.approx(19.0)
    assert page.long.burn_lower == pytest.approx(LOW_38_OF_40 / 0.05, abs=1e-4)
    assert page.firing
    # 6h/30m ×6: 30m is 14 of 14 (burn 20) but 6h is 38 of 440 = 0.086364 → burn 1.727 < 6
    six = c["6h/30m ×6"]
    assert (six.short.refused_sessions, six.short.sessions) == (14, 14)
    assert (six.long.refused_sessions, six.long.sessions) == (38, 440)
    assert six.long.burn == pytest.approx(38 / 440 / 0.05) and not six.firing
    # 3d/6h ×1: 3d is 38 of 1,240 = 0.030645 → burn 0.613 < 1
    ticket = c["3d/6h ×1"]
    assert (ticket.long.refused_sessions, ticket.long.sessions) == (38, 1240)
    assert ticket.long.burn == pytest.approx(0.6129, abs=1e-4) and not ticket.firing
    assert firing(ev) == {("page", "1h/5m ×14.4")}


def test_the_spike_alert_object_carries_budget_categories_and_a_dashboard_link(spike):
    from dashboard.filters import Filters

    (alert,) = evaluate(spike.writer, dashboard_url="http://dash.example:8050/").alerts
    body = alert.as_dict()
    assert body["status"] == "firing" and body["workload"] == WORKLOAD and body["severity"] == "page"
    assert body["target"] == 0.05 and body["slo_source"] == "policy" and body["rate"] == "session_refusal_rate"
    assert body["long"]["window"] == "1h" and body["short"]["window"] == "5m"
    assert body["long"]["since"] == "2026-03-02T11:00:00Z" and body["long"]["until"] == "2026-03-02T12:00:00Z"
    assert body["long"]["session_refusal_rate"]["numerator"] == 38
    assert body["long"]["session_refusal_rate"]["ci95_low"] == pytest.approx(LOW_38_OF_40, abs=1e-6)
    # 28 days: 38 refused of 1,240 sessions; budget left = 1 − 38 / (0.05 × 1,240) = 1 − 38 / 62 = 0.387097
    assert (body["error_budget_sessions"], body["error_budget_refused_sessions"]) == (1240, 38)
    assert body["error_budget_remaining"] == pytest.approx(1 - 38 / 62)
    # refused attempts of the chains in the 1h window: 20 + 10 cyber, 8 bio
    assert body["top_categories"] == [
        {"category": "cyber", "refused_attempts": 30, "share": pytest.approx(30 / 38)},
        {"category": "bio", "refused_attempts": 8, "share": pytest.approx(8 / 38)},
    ]
    url = body["dashboard_url"]
    assert url == f"http://dash.example:8050/refusals?from=2026-03-02&to=2026-03-02&workload={WORKLOAD}"
    # the dashboard reads exactly that view from the link
    view = Filters.from_query(url.split("?", 1)[1])
    assert (view.since, view.until, view.workloads) == (dt.date(2026, 3, 2), dt.date(2026, 3, 2), (WORKLOAD,))


def test_a_slow_burn_opens_a_ticket_on_3d_6h_but_does_not_page(adb):
    build_slow_burn(adb)
    adb.set_policy(POLICY)
    ev = evaluate(adb.writer)
    assert ev.at == SLOW_AT
    c = checks(ev)
    ticket = c["3d/6h ×1"]
    # 3d: 29 of 288 = 0.100694 → burn 2.0139 ≥ 1; lower bound 0.071028 / 0.05 = 1.42 ≥ 1
    assert (ticket.long.refused_sessions, ticket.long.sessions) == (29, 288)
    assert ticket.long.burn == pytest.approx(29 / 288 / 0.05)
    assert ticket.long.burn_lower == pytest.approx(LOW_29_OF_288 / 0.05, abs=1e-4)
    # 6h: 3 of 24 = 0.125 → burn 2.5 ≥ 1
    assert (ticket.short.refused_sessions, ticket.short.sessions) == (3, 24)
    assert ticket.short.burn == pytest.approx(2.5) and ticket.firing
    # 1h/5m: 5m is 1 of 1 (burn 20), but 1h is 1 of 4 = 0.25 → burn 5 < 14.4, and 4 < 10 sessions
    page = c["1h/5m ×14.4"]
    assert (page.short.refused_sessions, page.short.sessions) == (1, 1)
    assert (page.long.refused_sessions, page.long.sessions) == (1, 4)
    assert page.long.burn == pytest.approx(5.0) and not page.firing
    # 6h/30m: 30m is 1 of 2 (burn 10 ≥ 6), 6h only 2.5 < 6
    six = c["6h/30m ×6"]
    assert six.short.burn == pytest.approx(10.0) and six.long.burn == pytest.approx(2.5) and not six.firing
    assert firing(ev) == {("ticket", "3d/6h ×1")}
    # the 28-day budget: 1 − 29 / (0.05 × 288) = 1 − 2.013889 = −1.013889 (overspent)
    assert ev.alerts[0].budget_remaining == pytest.approx(1 - 29 / 14.4)


def test_three_refused_of_four_sessions_pages_nothing(adb):
    build_tiny(adb)
    adb.set_policy(POLICY)
    ev = evaluate(adb.writer)
    page = checks(ev)["1h/5m ×14.4"]
    # 3 of 4 = 0.75 → burn 15 ≥ 14.4 on both windows, yet 4 < 10 sessions
    assert page.long.burn == pytest.approx(15.0) and page.short.burn == pytest.approx(15.0)
    assert ev.alerts == ()


def test_the_wilson_lower_bound_alone_keeps_three_of_four_from_paging(adb):
    build_tiny(adb)
    adb.set_policy(POLICY + '[alerts]\nmin_sessions = 1\n[[alerts.rules]]\nseverity = "page"\nlong = "1h"\n'
                   'short = "5m"\nfactor = 14.4\n')
    ev = evaluate(adb.writer)
    (page,) = ev.checks
    # burn 15 ≥ 14.4 and 4 ≥ 1 session, but the lower bound 0.300642 / 0.05 = 6.01 < 14.4
    assert page.long.burn_lower == pytest.approx(LOW_3_OF_4 / 0.05, abs=1e-4)
    assert not page.firing and ev.alerts == ()


def test_windows_include_their_end_and_exclude_their_start(adb):
    end = SPIKE_AT
    add_sessions(adb, [end, end - 5 * M, end - 5 * M + dt.timedelta(microseconds=1), end + M],
                 ["cyber", "cyber", None, "cyber"], tag="edge")
    counts = window_counts(adb.writer, end, [Window("5m", 5 * M), Window("1h", 60 * M)])
    # 5m = (end − 5 min, end]: the session at `end` and the one a microsecond after the start; not the one at
    # the start itself, nor the one a minute after the end
    assert counts[(WORKLOAD, "5m")] == (2, 1)
    assert counts[(WORKLOAD, "1h")] == (3, 2)
    assert window_period(end - 5 * M, end).where("ts")[1] == [end - 5 * M + dt.timedelta(microseconds=1),
                                                              end + dt.timedelta(microseconds=1)]


def test_a_session_counts_once_per_window_refused_by_any_of_its_chains_there(adb):
    end = SPIKE_AT
    # one session, two chains: refused 30 min before the end (a later attempt refused), answered 2 min before
    adb.chain("c1", end - 30 * M, ("claude-haiku-4-5", "ok", {"accepted": False}), ("claude-sonnet-4-5", "refusal"),
              workload=WORKLOAD, session_id="s1")
    adb.add("c2", 1, end - 2 * M, workload=WORKLOAD, session_id="s1")
    # two chains without a session id: each its own session
    adb.add("c3", 1, end - M, workload=WORKLOAD)
    adb.add("c4", 1, end, outcome="refusal", workload=WORKLOAD)
    counts = window_counts(adb.writer, end, [Window("5m", 5 * M), Window("1h", 60 * M)])
    assert counts[(WORKLOAD, "5m")] == (3, 1)  # s1 (its 5m chain answered), c3, c4 (refused)
    assert counts[(WORKLOAD, "1h")] == (3, 2)  # s1 now refused by c1's second attempt


def test_window_sessions_are_the_reports_sessions_of_the_same_period(spike):
    since = SPIKE_AT - dt.timedelta(hours=6)
    facts = collect(spike.writer, window_period(since, SPIKE_AT), parse_policy_toml(POLICY))
    table = chain_table(facts, None, True).set_index("workload")
    counts = window_counts(spike.writer, SPIKE_AT, [Window("6h", dt.timedelta(hours=6))])
    for workload in ("chat", "other"):
        assert counts[(workload, "6h")] == (table.loc[workload, "sessions"], table.loc[workload, "refused_sessions"])


def test_a_policy_without_a_refusal_slo_watches_nothing(spike):
    with pytest.raises(UsageError, match=NOTHING_TO_WATCH):
        evaluate(spike.writer, parse_policy_toml(""))
    with pytest.raises(UsageError, match=NOTHING_TO_WATCH):  # a section, but the default target
        evaluate(spike.writer, parse_policy_toml("[workloads.chat]\nrequire_disclosure = true\n"))


def test_a_rule_that_cannot_fire_for_a_target_is_skipped_with_a_warning(spike):
    ev = evaluate(spike.writer, parse_policy_toml("[workloads.chat]\nrefusal_slo = 0.1\n"))
    # 14.4 × 0.1 = 1.44 ≥ 1: the 1h/5m page would need a rate above 100%; 6 × 0.1 = 0.6 and 1 × 0.1 still apply
    assert {c.rule.name for c in ev.checks} == {"6h/30m ×6", "3d/6h ×1"}
    (warning,) = [w for w in ev.warnings if "cannot fire" in w]
    assert "1h/5m ×14.4" in warning and "`chat`" in warning and "\n" not in warning


def test_a_period_without_chains_has_no_data(spike):
    ev = evaluate(spike.writer, at=SPIKE_AT + dt.timedelta(days=4))  # the 3-day windows end after every chain
    assert not ev.has_data and ev.alerts == ()
    empty = evaluate(spike.writer, at=SPIKE_AT - dt.timedelta(days=30))
    assert not empty.has_data


def test_an_open_alert_that_stopped_firing_resolves_and_a_firing_one_is_not_new(spike):
    ev = evaluate(spike.writer)
    (alert,) = ev.alerts
    new, stopped = changes(ev, {alert.key: SPIKE_AT})
    assert new == () and stopped == ()
    old = (WORKLOAD, "ticket", "3d/6h ×1")
    new, stopped = changes(ev, {old: SPIKE_AT - dt.timedelta(days=1)})
    assert new == (alert,) and [r.key for r in stopped] == [old]
    assert stopped[0].check is not None and stopped[0].as_dict()["status"] == "resolved"


def test_the_snapshot_holds_every_workload_and_window_with_target_and_source(spike):
    snap = burn_table(spike.writer, last_day=True)
    frame = snap.frame().set_index(["workload", "window"])
    assert [w.name for w in snap.windows] == ["28d", "3d", "24h", "6h", "1h", "30m", "5m"]
    assert "28d" not in snap.rate_windows  # the budget's window only, unless a rule uses it
    ruled = parse_policy_toml(POLICY + '[[alerts.rules]]\nseverity = "ticket"\nlong = "28d"\nshort = "1d"\n'
                              'factor = 1\n')
    assert burn_table(spike.writer, ruled).rate_windows == ("28d", "1d", "24h")
    assert frame.loc[("chat", "1h"), "burn_rate"] == pytest.approx(19.0)
    assert frame.loc[("chat", "28d"), "error_budget_remaining"] == pytest.approx(1 - 38 / 62)
    assert frame.loc[("other", "5m"), "slo_source"] == "default" and frame.loc[("other", "5m"), "target"] == 0.05
    assert frame.loc[("other", "5m"), "burn_rate"] == pytest.approx(20.0)
    days = {d.workload: d for d in snap.last_day}
    # the last 24 h: the 6 h's 440 chains and 340 of the 800 before (−7 h − i × 3 min > −24 h ⇔ i < 340)
    assert (days["chat"].chains, days["chat"].refused_chains) == (780, 38)


def test_default_rules_are_the_specs():
    assert [(r.severity, r.long, r.short, r.factor) for r in DEFAULT_ALERT_RULES] == [
        ("page", "1h", "5m", 14.4), ("page", "6h", "30m", 6), ("ticket", "3d", "6h", 1)]
    assert [w.name for w in rule_windows(DEFAULT_ALERT_RULES)] == ["3d", "6h", "1h", "30m", "5m"]
