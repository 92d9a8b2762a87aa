"""What a curator reads before choosing thresholds, as markdown and small frames (pure: no Dagster).

Each renderer returns text the Dagster layer attaches as a markdown metadata entry; pictures are
inline data URIs (SVG histograms small enough to show without a click, PNG thumbnails composed into
one image per panel).
"""

from curation_assets.report.duplicates import duplicate_groups_panel
from curation_assets.report.examples import ImageBytes, bound_examples
from curation_assets.report.format import INLINE_LIMIT
from curation_assets.report.funnel import filter_funnel, funnel_steps, quarantine_funnel
from curation_assets.report.images import ShardImages
from curation_assets.report.panels import score_panels
from curation_assets.report.quarantine import quarantine_examples
from curation_assets.report.recaptions import recaption_counts, recaption_panel

__all__ = [
    "INLINE_LIMIT",
    "ImageBytes",
    "ShardImages",
    "bound_examples",
    "duplicate_groups_panel",
    "filter_funnel",
    "funnel_steps",
    "quarantine_examples",
    "quarantine_funnel",
    "recaption_counts",
    "recaption_panel",
    "score_panels",
]
