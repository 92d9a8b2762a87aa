"""The table registry is the one place tables are declared: every table is computed, stage names are not
spelled elsewhere, the graph matches its reviewed snapshot, and the README's "what re-runs" table agrees."""

import ast
import json
import re
from pathlib import Path

import pytest

from curation_assets import registry
from curation_assets.shard_work import COMPUTES, ShardWork, computation
from curation_assets.table_spec import Scope
from curation_assets_tests.helpers import REPO_ROOT, smoke_recipe
from curation_assets_tests.spec_snapshot import SNAPSHOT, current

PACKAGE = REPO_ROOT / "curation_assets"
# String literals that equal a table name but mean something else where they appear: model resource
# names, score and decision columns named like their table, a drop rule and a caption source.
OTHER_MEANINGS = {
    "itm": "model",
    "nsfw": "model",
    "watermark": "model",
    "aesthetics": "model and column",
    "text_embedding": "model and column",
    "clip_similarity": "column",
    "selected": "column of caption/selected",
    "dedup": "the drop rule of duplicates in filtered",
    "text_hash": "column (text/text_hash holds it and three variants)",
    "recaptioned": "caption_source value",
    "curated": "a label in the demo summary",
    "mix": "the key prefix of the mix's tables (Product.mix)",
    "exports": "the list of exports in mix/exports' index file",
}


def test_every_per_shard_table_has_exactly_one_computation():
    for spec in registry.COMPUTED_PER_SHARD:
        assert computation(spec) is not None
    assert set(COMPUTES) == set(registry.COMPUTED_PER_SHARD)
    assert {spec for spec in registry.TABLES if spec.scope is Scope.shard and spec.written_by is None} == {
        *registry.COMPUTED_PER_SHARD,
        *registry.NORMALIZED.values(),
        *registry.QUARANTINE.values(),
    }


def test_names_are_unique_and_scopes_name_their_files():
    assert len({(spec.kind, spec.name) for spec in registry.TABLES}) == len(registry.TABLES)
    for spec in registry.TABLES:
        assert (spec.scope is Scope.whole) == (spec.file_name is not None), spec.name
        for name in spec.reads:
            registry.read_spec(spec, name)  # every read names a declared table (of its kind, or kind/name)


def string_literals(path: Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.lineno, node.value


def test_no_stage_name_is_spelled_outside_the_registry():
    names = {spec.name for spec in registry.TABLES} - set(OTHER_MEANINGS)
    found = [
        f"{path.relative_to(REPO_ROOT)}:{line}: {value!r}"
        for path in PACKAGE.rglob("*.py")
        if path.name != "registry.py" and "demo" not in path.parts
        for line, value in string_literals(path)
        if value in names
    ]
    assert not found, "use the registry's spec instead of the name:\n" + "\n".join(found)


def test_the_graph_matches_its_reviewed_snapshot():
    recorded = json.loads(SNAPSHOT.read_text())
    now = current()
    for recipe in now:
        for key in sorted(set(recorded[recipe]) | set(now[recipe])):
            assert now[recipe].get(key) == recorded[recipe].get(key), (
                f"{recipe} {key} changed: run `make snapshot` if that is intended, and review the diff"
            )


def readme_rerun_table() -> list[tuple[str, set[str], set[str]]]:
    """(recipe section, tables whose code version changes, tables that follow only where output changed)."""
    text = (REPO_ROOT / "README.md").read_text()
    block = text[text.index("| you change |") :].split("\n\n")[0].splitlines()[2:]
    rows = []
    for line in block:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        section = re.fullmatch(r"`([\w.]+)`", cells[0])
        if section:
            rows.append(
                (section.group(1), set(re.findall(r"[\w]+/[\w]+", cells[1])), set(re.findall(r"[\w]+/[\w]+", cells[2])))
            )
    return rows


def downstream(recipe, names: set[str]) -> set[str]:
    found, frontier = set(), set(names)
    while frontier:
        children = {
            spec.qualified_name
            for spec in registry.TABLES
            if any(registry.read_spec(spec, read).qualified_name in frontier for read in spec.reads_under(recipe))
        }
        frontier = children - found - names
        found |= frontier
    return found


def covers(read: str, edited: str) -> bool:
    """A table reading recipe section `read` sees an edit of `edited`: the same, a part of it, or
    a whole that holds it (`mix` covers `mix.seed`, and `mix.tokenizer` is part of `mix`)."""
    return read == edited or read.startswith(f"{edited}.") or edited.startswith(f"{read}.")


def test_the_readme_says_what_each_recipe_edit_reruns():
    recipe = smoke_recipe(evaluation=True)
    rows = readme_rerun_table()
    assert {section for section, _, _ in rows} >= {"filters", "dedup", "selectors", "models.clip", "recaption"}
    for section, reruns, follows in rows:
        restaled = {
            spec.qualified_name
            for spec in registry.TABLES
            if any(covers(s, section) for s in registry.recipe_sections(spec, recipe))
        }
        assert reruns == restaled, f"README row {section}: registry says {sorted(restaled)}"
        assert follows == downstream(recipe, restaled), f"README row {section}: downstream is not {sorted(follows)}"


class NoModels:
    def get(self, name):
        raise AssertionError("no model expected")

    def batch_settings(self, name):
        raise AssertionError("no model expected")


def test_a_computation_cannot_read_or_use_what_its_table_does_not_declare(tmp_path):
    recipe = smoke_recipe()
    spec = registry.CLIP_SIMILARITY
    work = ShardWork(spec, "s1", None, None, recipe.view(spec.recipe_sections), spec.reads, NoModels(), print)
    with pytest.raises(PermissionError, match="reads nsfw without declaring it"):
        work.read("nsfw")
    with pytest.raises(PermissionError, match="uses model clip without declaring it"):
        work.model("clip")


def test_filters_and_analysis_find_every_score_column_through_the_registry():
    columns = registry.column_tables(registry.CAPTION)
    assert columns["itm_probability"] is registry.ITM and columns["num_words"] is registry.CAPTION_TEXT_STATS
    analysed = registry.analysed_columns(registry.CAPTION)
    assert sum(len(c) for c in analysed.values()) == len(columns) == 15


def test_only_tables_something_reads_are_computed_unless_the_recipe_asks():
    recipe = smoke_recipe()
    in_use = set(registry.tables_in_use(recipe))
    assert registry.CAPTION_EMBEDDING not in in_use  # read by nothing under this recipe
    assert registry.CLIP_EMBEDDINGS in in_use  # read by clip_similarity and aesthetics, which decisions read
    asked = recipe.model_copy(
        update={"scoring": recipe.scoring.model_copy(update={"also_compute": ["caption/caption_embedding"]})}
    )
    assert set(registry.tables_in_use(asked)) == in_use | {registry.CAPTION_EMBEDDING}
    # Semantic dedup of text documents reads their embeddings: they are computed from then on.
    from curation_assets.recipe import SemanticDeduplicator

    semantic = recipe.text.dedup.model_copy(update={"semantic_deduplicator": SemanticDeduplicator()})
    dedup = recipe.model_copy(update={"text": recipe.text.model_copy(update={"dedup": semantic})})
    assert registry.TEXT_EMBEDDING in registry.tables_in_use(dedup) and registry.TEXT_EMBEDDING not in in_use


def test_asking_for_an_unknown_table_names_the_known_ones():
    from curation_assets.recipe import Scoring

    with pytest.raises(ValueError, match="caption/caption_embedding"):
        Scoring(also_compute=["caption/caption_embeddings"])


def test_image_tables_due_together_are_one_step():
    steps = registry.per_shard_steps(smoke_recipe())
    assert registry.CAPTION_IMAGE_PASS in steps
    flat = [spec for step in steps for spec in step]
    assert sorted(flat, key=lambda s: s.qualified_name) == sorted(
        registry.tables_in_use(smoke_recipe()), key=lambda s: s.qualified_name
    )
