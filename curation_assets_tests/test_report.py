"""The curator's report (report/): counts that agree with the decisions, pictures that decode, panels
short enough to show without a click."""

import base64
import io
import re

import numpy as np
import polars as pl
import pytest
from PIL import Image

from curation_assets.report import (
    INLINE_LIMIT,
    bound_examples,
    duplicate_groups_panel,
    filter_funnel,
    funnel_steps,
    quarantine_funnel,
    recaption_panel,
    score_panels,
)
from curation_assets.report.format import number, share
from curation_assets.report.histogram import Bound, histogram_svg
from curation_assets.selection.decisions import decide_samples
from curation_assets.selection.filters import ResolvedRule


def rule(op, column, lower=None, upper=None):
    return ResolvedRule(op, column, lower, upper, True, None)


@pytest.fixture
def samples():
    rng = np.random.default_rng(0)
    n = 400
    return pl.DataFrame(
        {
            "sample_id": [f"s{i:03d}" for i in range(n)],
            "shard_id": [f"shard-{i % 4}" for i in range(n)],
            "clip_similarity": rng.normal(0.3, 0.05, n).astype(np.float32),
            "num_words": rng.integers(1, 40, n),
            "caption": [f"caption {i}" for i in range(n)],
        }
    )


RULES = [rule("image_text_similarity_filter", "clip_similarity", lower=0.28), rule("words_num_filter", "num_words", 5)]


def png_of(markdown: str) -> Image.Image:
    [payload] = re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", markdown)
    return Image.open(io.BytesIO(base64.b64decode(payload)))


def test_each_bound_says_what_it_drops_alone_and_first_and_the_counts_are_right(samples):
    panels = score_panels(samples, ["clip_similarity", "num_words"], RULES)
    alone = int((samples["clip_similarity"] < 0.28).sum())
    words_alone = int((samples["num_words"] < 5).sum())
    words_first = int(((samples["num_words"] < 5) & (samples["clip_similarity"] >= 0.28)).sum())
    assert (
        f"drops **{alone:,}** ({share(alone, 400)}) on its own; first to fail for {alone:,}"
        in panels["clip_similarity"]
    )
    assert (
        f"drops **{words_alone:,}** ({share(words_alone, 400)}) on its own; first to fail for {words_first:,}"
        in (panels["num_words"])
    )
    for panel in panels.values():
        assert panel.startswith("![") and "(<data:image/svg+xml,%3Csvg" in panel
        assert len(panel) < INLINE_LIMIT  # shown on the asset page without a click


def test_a_score_without_bounds_says_so_and_a_constant_score_reads_plainly():
    frame = pl.DataFrame({"sample_id": ["a", "b"], "shard_id": ["x", "x"], "score": [0.50309, 0.50309]})
    [panel] = score_panels(frame, ["score"], []).values()
    assert "no recipe bound on this score" in panel
    assert "q50 0.5031" in panel and "e-" not in panel  # no offset axis, no scientific ticks


def test_the_funnel_adds_up_and_matches_the_decisions_including_dedup(samples):
    groups = pl.DataFrame(
        {
            "sample_id": ["s000", "s001", "s002", "s003"],
            "group_id": ["s000", "s000", "s002", "s002"],
            "method": ["sha256", "sha256", "phash", "phash"],
        }
    )
    decisions = decide_samples(samples, RULES, groups, rank_by="clip_similarity")
    steps = funnel_steps(decisions, RULES)
    assert steps["step"].to_list() == ["image_text_similarity_filter", "words_num_filter", "dedup"]
    assert steps["left"][-1] == int(decisions["kept"].sum())
    assert 400 - int(steps["dropped"].sum()) == int(decisions["kept"].sum())
    markdown, per_shard = filter_funnel(decisions, RULES)
    assert "| step" in markdown and f"**{int(decisions['kept'].sum()):,}**" in markdown
    assert per_shard["in"].sum() == 400 and per_shard["kept"].sum() == decisions["kept"].sum()
    assert set(per_shard.columns) >= {"shard_id", "in", "image_text_similarity_filter", "dedup", "kept"}


def test_duplicates_first_caught_by_a_rule_are_explained_not_miscounted():
    frame = pl.DataFrame(
        {"sample_id": ["a", "b", "c"], "shard_id": ["x"] * 3, "clip_similarity": [0.4, 0.35, 0.1], "caption": "abc"}
    )
    groups = pl.DataFrame({"sample_id": ["a", "b", "c"], "group_id": ["a"] * 3, "method": ["sha256"] * 3})
    decisions = decide_samples(frame, [RULES[0]], groups, rank_by="clip_similarity")
    markdown, _ = filter_funnel(decisions, [RULES[0]])
    assert "Dedup found **2** duplicates of kept samples: 1 are dropped as duplicates" in markdown
    assert "the other 1 had already failed an earlier rule (1 by `image_text_similarity_filter`)" in markdown


def test_the_quarantine_funnel_starts_from_every_row_read():
    quarantine = pl.DataFrame(
        {
            "shard_id": ["a", "a", "b"],
            "reason": ["undecodable_image", "undecodable_image", "empty_caption"],
            "detail": ["x", "y", "z"],
        }
    )
    markdown, per_shard = quarantine_funnel(quarantine, {"a": 7, "b": 10})
    assert "20 rows read" in markdown and "**3** (15.0 %)" in markdown and "**17** (85.0 %)" in markdown
    assert per_shard.filter(pl.col("shard_id") == "a")["rows"].to_list() == [2]


def test_histograms_draw_every_bound_even_off_scale():
    svg = histogram_svg(np.linspace(0, 1, 50), [Bound(0.2, "lower"), Bound(5.0, "upper")])
    assert svg.count("firebrick") >= 1 and "off scale" in svg
    assert len(svg) < INLINE_LIMIT


def image(color) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), color).save(buffer, "PNG")
    return buffer.getvalue()


def test_pictures_near_bounds_and_of_groups_decode_and_show_missing_images_as_placeholders(samples):
    def image_bytes(ids):
        return {sample_id: image((200, 10, 10)) for sample_id in ids[::2]}  # every other image is missing

    near = bound_examples(samples, RULES, image_bytes, per_side=3)
    assert "samples nearest the 2 bounds" in near
    picture = png_of(near)
    assert picture.width > 300 and picture.height > 150

    groups = pl.DataFrame({"sample_id": ["s000", "s001"], "group_id": ["s000", "s000"], "method": ["sha256"] * 2})
    decisions = decide_samples(samples, RULES, groups, rank_by="clip_similarity")
    panel = duplicate_groups_panel(groups, decisions, samples, image_bytes)
    assert "**1** duplicate groups holding **2** samples (linked by sha256 2)" in panel
    assert png_of(panel).width > 200


def test_recaptions_show_counts_and_before_and_after():
    recaptioned = pl.DataFrame(
        {
            "sample_id": ["a", "b", "c"],
            "original_caption": ["old a", "old b", "old c"],
            "new_caption": ["new a", "new b", "new c"],
            "score_before": [0.2, 0.25, 0.3],
            "score_after": [0.35, 0.2, 0.31],
            "kept": [True, False, False],
            "decision": ["kept: better", "not kept: worse", "not kept: below keep_min_score"],
        }
    )
    panel = recaption_panel(recaptioned, lambda ids: {i: image((0, 90, 0)) for i in ids})
    assert "entered the band" in panel and "**1** (33.3 %)" in panel
    assert "3 of 3 shown" in panel
    assert png_of(panel).height > 100


@pytest.mark.parametrize(
    ("value", "text"), [(None, "missing"), (3.0, "3"), (12345.0, "12,345"), (0.1 + 0.2, "0.3"), (1e-7, "1e-7")]
)
def test_numbers_read_plainly(value, text):
    assert number(value) == text


@pytest.mark.parametrize("bound", [Bound(0.5, "upper", False), Bound(0.5, "upper", True), Bound(0.1, "lower")])
def test_every_histogram_is_well_formed_xml_whatever_its_labels(bound):
    """A browser draws nothing for an SVG that is not well-formed (caught in Chromium: "<0.5")."""
    from xml.etree import ElementTree

    svg = histogram_svg(np.linspace(0, 0.01, 50), [bound])
    root = ElementTree.fromstring(svg)
    assert root.tag.endswith("svg") and bound.label in "".join(root.itertext())


def test_an_inline_svg_survives_markdown_entity_decoding():
    """Markdown decodes entities in link destinations; the SVG's own "&lt;" must not become "<"."""
    import html
    import urllib.parse
    from xml.etree import ElementTree

    from curation_assets.report.format import svg_image

    svg = histogram_svg(np.linspace(0, 0.01, 50), [Bound(0.5, "upper", False)])
    destination = svg_image(svg, "x").split("(<", 1)[1].rsplit(">)", 1)[0]
    as_browser_sees_it = urllib.parse.unquote(html.unescape(destination).removeprefix("data:image/svg+xml,"))
    ElementTree.fromstring(as_browser_sees_it)
