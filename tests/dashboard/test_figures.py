"""The figure functions are pure: DataFrames in, plotly Figures out, no database and no Dash needed."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys

import pandas as pd
import plotly.graph_objects as go
import pytest

from dashboard import figures


def days(n: int) -> list[dt.date]:
    return [dt.date(2026, 11, 2) + dt.timedelta(days=i) for i in range(n)]


def annotation_text(fig: go.Figure) -> str:
    return " ".join(a.text for a in fig.layout.annotations)


def test_figures_module_needs_neither_a_database_nor_dash():
    code = ("import sys, dashboard.figures; "
            "print(sorted(m for m in ('duckdb', 'dash', 'flask', 'analytics', 'dashboard.data') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_rate_band_draws_the_interval_as_a_closed_band_around_the_line():
    df = pd.DataFrame({"day": days(3), "value": [0.1, 0.2, 0.15], "ci95_low": [0.05, 0.1, 0.1],
                       "ci95_high": [0.2, 0.3, 0.2]})
    fig = figures.rate_band(df, "day", "Refusal rate")
    band, line = fig.data
    assert band.fill == "toself"
    assert list(band.y) == [0.2, 0.3, 0.2, 0.1, 0.1, 0.05]  # high forwards, low backwards
    assert list(line.y) == [0.1, 0.2, 0.15]
    assert list(line.x) == ["2026-11-02", "2026-11-03", "2026-11-04"]
    assert fig.layout.yaxis.tickformat == ".0%"
    assert fig.layout.title.text == "Refusal rate"


def test_rate_band_marks_flagged_rows_and_draws_the_target():
    df = pd.DataFrame({"week": ["2026-W44", "2026-W45"], "value": [0.1, 0.3], "ci95_low": [0.05, 0.2],
                       "ci95_high": [0.15, 0.4], "significant": [False, True]})
    fig = figures.rate_band(df, "week", "Weekly", flags="significant", target=figures.Target(0.05, "target"))
    names = [t.name for t in fig.data]
    assert names == ["95% interval", "rate", "target", "significant drift"]
    assert list(fig.data[3].x) == ["2026-W45"]
    assert list(fig.data[2].y) == [0.05, 0.05]


def test_a_missing_rate_is_a_gap_not_zero():
    df = pd.DataFrame({"day": days(3), "value": [0.1, None, 0.2], "ci95_low": [0.0, None, 0.1],
                       "ci95_high": [0.2, None, 0.3]})
    fig = figures.rate_band(df, "day", "r")
    assert list(fig.data[1].y) == [0.1, None, 0.2]


@pytest.mark.parametrize("make", [
    lambda e: figures.rate_band(e, "day", "t"),
    lambda e: figures.rate_lines(e, "day", ["refusal rate"], "t"),
    lambda e: figures.bars(e, "day", "value", "t"),
    lambda e: figures.stacked(e, "day", "category", "value", "t"),
    lambda e: figures.rate_bars(e, "day", "t"),
    lambda e: figures.grouped(e, "day", {"a": "value"}, "t"),
])
def test_an_empty_frame_gives_a_figure_that_says_so(make):
    empty = pd.DataFrame({"day": [], "value": [], "ci95_low": [], "ci95_high": [], "category": [],
                          "refusal rate": []})
    fig = make(empty)
    assert len(fig.data) == 0
    assert "No data" in annotation_text(fig)
    json.loads(fig.to_json())


def test_stacked_keeps_the_given_order_and_fixed_colours():
    df = pd.DataFrame({"day": days(2) * 2, "outcome": ["redeemed", "redeemed", "expired", "expired"],
                       "credits": [3, 1, 2, 0]})
    fig = figures.stacked(df, "day", "outcome", "credits", "Credits", order=["expired", "redeemed"])
    assert [t.name for t in fig.data] == ["expired", "redeemed"]
    assert fig.data[1].marker.color == figures.COLOURS["redeemed"]
    assert fig.layout.barmode == "stack"
    assert list(fig.data[1].y) == [3, 1]


def test_stacked_of_all_zeros_is_empty():
    df = pd.DataFrame({"day": days(2), "kind": ["a", "b"], "n": [0, 0]})
    assert len(figures.stacked(df, "day", "kind", "n", "t").data) == 0


def test_rate_bars_have_asymmetric_error_bars_and_slo_markers():
    df = pd.DataFrame({"workload": ["a", "b"], "value": [0.2, 0.04], "ci95_low": [0.1, 0.01],
                       "ci95_high": [0.35, 0.1], "slo": [0.05, 0.05]})
    fig = figures.rate_bars(df, "workload", "SLO", target="slo")
    bar, marks = fig.data
    assert bar.error_y.array == pytest.approx((0.15, 0.06))
    assert bar.error_y.arrayminus == pytest.approx((0.1, 0.03))
    assert list(marks.y) == [0.05, 0.05]


def test_horizontal_bars_list_the_first_row_on_top():
    df = pd.DataFrame({"reason": ["invalid JSON", "no timestamp"], "rejects": [5, 2]})
    fig = figures.bars(df, "reason", "rejects", "Rejects", horizontal=True)
    assert fig.data[0].orientation == "h"
    assert list(fig.data[0].y) == ["no timestamp", "invalid JSON"]  # plotly draws the last category on top


def test_sankey_links_first_models_to_resolvers_with_unresolved_last():
    flows = pd.DataFrame({"workload": ["w", "w", "w", "v"],
                          "first_model": ["haiku", "haiku", "haiku", "haiku"],
                          "resolver": ["haiku", "sonnet", "unresolved", "sonnet"], "chains": [10, 3, 1, 2]})
    fig = figures.sankey(flows, "Flows")
    node, link = fig.data[0].node, fig.data[0].link
    assert list(node.label) == ["haiku (first)", "haiku (resolved)", "sonnet (resolved)", "unresolved"]
    assert sorted(zip(link.source, link.target, link.value, strict=True)) == [(0, 1, 10), (0, 2, 5), (0, 3, 1)]


def test_resolution_stacks_shares_per_workload_in_tier_order():
    df = pd.DataFrame({"workload": ["w", "w", "w"], "tier": pd.array([1, 2, None], dtype="Int64"),
                       "model": ["haiku", "opus", "unresolved"], "value": [0.7, 0.2, 0.1]})
    fig = figures.resolution(df, "Resolution")
    assert [t.name for t in fig.data] == ["haiku", "opus", "unresolved"]
    assert [t.x[0] for t in fig.data] == [0.7, 0.2, 0.1]
    assert fig.data[2].marker.color == figures.COLOURS["unresolved"]


def test_grouped_bars_one_trace_per_series():
    df = pd.DataFrame({"workload": ["a", "b"], "blended": [0.01, 0.02], "top": [0.03, None]})
    fig = figures.grouped(df, "workload", {"blended": "blended", "top tier": "top"}, "Cost", money=True)
    assert [t.name for t in fig.data] == ["blended", "top tier"]
    assert list(fig.data[1].y) == [0.03, None]
    assert fig.layout.yaxis.tickprefix == "$"


def test_loads_stacks_loaded_duplicates_and_rejected_records():
    df = pd.DataFrame({"day": days(2), "loaded": [100, 50], "duplicates": [0, 5], "rejected": [1, 0],
                       "files": [3, 2]})
    fig = figures.loads(df, "Loads")
    assert [t.name for t in fig.data] == ["loaded", "duplicates", "records rejected"]
    assert list(fig.data[0].y) == [100, 50]


def test_colour_map_is_stable_for_the_same_names():
    assert figures.colour_map(["b", "a", "unresolved"]) == figures.colour_map(["b", "a", "unresolved"])
    assert figures.colour_map(["x", "unresolved"])["unresolved"] == figures.COLOURS["unresolved"]


def test_every_figure_serialises_to_json():
    df = pd.DataFrame({"day": days(2), "value": [0.1, 0.2], "ci95_low": [0.0, 0.1], "ci95_high": [0.2, 0.3],
                       "refusal rate": [0.1, 0.2], "category": ["cyber", "bio"]})
    for fig in (figures.rate_band(df, "day", "a"), figures.rate_lines(df, "day", ["refusal rate"], "b"),
                figures.stacked(df, "day", "category", "value", "c"), figures.bars(df, "category", "value", "d")):
        assert json.loads(fig.to_json())["layout"]["title"]["text"] in "abcd"


@pytest.mark.parametrize("make", [
    lambda z: figures.bars(z, "name", "n", "t", message="Nothing rejected"),
    lambda z: figures.stacked(z, "name", "name", "n", "t", message="Nothing rejected"),
    lambda z: figures.grouped(z, "name", {"a": "n", "b": "m"}, "t"),
    lambda z: figures.sankey(z.assign(first_model="a", resolver="b", chains=0), "t"),
])
def test_a_chart_of_only_zeros_and_gaps_says_so_instead_of_drawing_bare_axes(make):
    zeros = pd.DataFrame({"name": ["a", "b"], "n": [0, None], "m": [None, 0.0]})
    fig = make(zeros)
    assert len(fig.data) == 0 and annotation_text(fig)
    assert fig.layout.xaxis.visible is False and fig.layout.yaxis.visible is False


def test_the_message_of_an_empty_chart_can_be_chosen():
    fig = figures.bars(pd.DataFrame({"reason": [], "rejects": []}), "reason", "rejects", "t",
                       message="No record has been rejected in any load")
    assert annotation_text(fig) == "No record has been rejected in any load"


def test_every_trigger_and_error_class_has_its_own_colour():
    from fallbackscope.core.policy import KNOWN_TRIGGERS

    assert set(figures.TRIGGER_COLOURS) == set(KNOWN_TRIGGERS)
    assert len(set(figures.TRIGGER_COLOURS.values())) == len(figures.TRIGGER_COLOURS)
    greys = {figures.COLOURS[n] for n in ("unknown", "unresolved", "expired")}
    assert not greys & set(figures.TRIGGER_COLOURS.values())


def test_colour_map_keeps_fixed_colours_and_gives_the_rest_distinct_free_ones():
    fixed = {"m1": figures.PALETTE[0]}
    out = figures.colour_map(["m2", "m1", "m3", "unknown"], fixed)
    assert out["m1"] == figures.PALETTE[0] and out["unknown"] == figures.COLOURS["unknown"]
    assert len(set(out.values())) == 4
    many = figures.colour_map([f"m{i}" for i in range(len(figures.PALETTE))])
    assert len(set(many.values())) == len(figures.PALETTE)


def test_a_page_colour_map_colours_a_model_alike_in_every_figure():
    colours = figures.colour_map(["haiku", "opus", "sonnet", "unknown"])
    flows = pd.DataFrame({"workload": ["w", "w"], "first_model": ["sonnet", "sonnet"],
                          "resolver": ["sonnet", "opus"], "chains": [3, 1]})
    node = figures.sankey(flows, "s", colours).data[0].node
    drawn = dict(zip(node.label, node.color, strict=True))
    share = pd.DataFrame({"workload": ["w", "w"], "tier": pd.array([1, 2], dtype="Int64"),
                          "model": ["opus", "sonnet"], "value": [0.4, 0.6]})
    bars = {t.name: t.marker.color for t in figures.resolution(share, "r", colours).data}
    cost = pd.DataFrame({"day": days(2), "model": ["sonnet", "haiku"], "cost": [1.0, 2.0]})
    stacked = {t.name: t.marker.color for t in figures.stacked(cost, "day", "model", "cost", "c", colours=colours).data}
    assert drawn["sonnet (first)"] == drawn["sonnet (resolved)"] == bars["sonnet"] == stacked["sonnet"] \
        == colours["sonnet"]
    assert drawn["opus (resolved)"] == bars["opus"] == colours["opus"]
    assert stacked["haiku"] == colours["haiku"]


def test_a_target_is_a_dashed_line_in_the_colour_of_the_rate_it_applies_to():
    df = pd.DataFrame({"day": days(3), "session refusal rate": [0.1, 0.2, 0.15], "refusal rate": [0.05, 0.1, 0.1]})
    target = figures.Target(0.05, "session refusal rate SLO: target 5.0% (default)", "session refusal rate")
    fig = figures.rate_lines(df, "day", ["refusal rate", "session refusal rate"], "Daily", target=target)
    line = fig.data[-1]
    assert line.name == target.name and list(line.y) == [0.05, 0.05]
    assert list(line.x) == ["2026-11-02", "2026-11-04"]
    assert line.line.color == figures.RATE_COLOURS["session refusal rate"] and line.line.dash == "dash"


def test_no_single_target_is_said_in_the_subtitle_not_drawn():
    df = pd.DataFrame({"day": days(2), "session refusal rate": [0.1, 0.2]})
    fig = figures.rate_lines(df, "day", ["session refusal rate"], "Daily",
                             target=figures.Target(None, "targets differ per workload"))
    assert [t.name for t in fig.data] == ["session refusal rate"]
    assert fig.layout.title.subtitle.text == "targets differ per workload"


def test_rate_bars_colour_each_row_and_hover_the_target_with_its_source():
    df = pd.DataFrame({"model": ["haiku", "opus"], "value": [0.2, 0.1], "ci95_low": [0.1, 0.0],
                       "ci95_high": [0.3, 0.2], "slo": [0.05, 0.3], "source": ["5.0% (default)", "30.0% (policy)"]})
    fig = figures.rate_bars(df, "model", "r", target="slo", target_text="source",
                            colours={"haiku": "#111111", "opus": "#222222"})
    assert list(fig.data[0].marker.color) == ["#111111", "#222222"]
    assert list(fig.data[1].customdata) == ["5.0% (default)", "30.0% (policy)"]


def test_a_long_message_is_wrapped_to_fit_a_half_width_chart_and_shown_as_text():
    message = "/data/<b>fs</b>.duckdb: no such database; load logs first with `fallbackscope ingest`."
    text = annotation_text(figures.empty(" ", message))
    assert all(len(line) <= 70 for line in text.split("<br>")) and text.count("<br>") >= 1
    assert "<b>" not in text and "&lt;b&gt;" in text
