"""Eval results on the graph: the proxy eval over the mix's caption pairs (run as an external script
through Dagster Pipes, like any trainer), the recipe's external train/eval command on the exports,
and the history of both. The logic is in evaluation/; this layer prepares inputs, launches, records.

Why the proxy runs through Pipes although it could run in-process: it is the same path a real
trainer takes (Mini-Gemini on a GPU cluster through PipesK8sClient), so the shipped proxy script
tests that path end to end, and a result is recorded only from what the script reports after it
finished.
"""

import json
import sys
import tempfile
from pathlib import Path

import polars as pl
from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    Failure,
    MaterializeResult,
    MetadataValue,
    PipesSubprocessClient,
    asset,
)

from curation_assets import registry
from curation_assets.defs.automation import on_new_data
from curation_assets.defs.keys import asset_key
from curation_assets.defs.models import ProxyEncodersResource
from curation_assets.defs.resources import DataRootResource
from curation_assets.defs.shard_assets import asset_spec_kwargs
from curation_assets.evaluation.external import failure_message, launcher_command, render_command
from curation_assets.evaluation.history import FINGERPRINT_KEY, history_markdown, history_table
from curation_assets.evaluation.pipes_proxy import SENSITIVITY_CHECK
from curation_assets.evaluation.report import comparison_markdown
from curation_assets.evaluation.settings import eval_set_file
from curation_assets.exports import layout
from curation_assets.mix.draw import mix_version
from curation_assets.recipe import Recipe
from curation_assets.table_spec import Scope

EVAL_RESULTS, EXTERNAL_RESULTS, EVAL_HISTORY = registry.EVAL_RESULTS, registry.EXTERNAL_RESULTS, registry.EVAL_HISTORY
PROXY_SCRIPT = "curation_assets.evaluation.pipes_proxy"
# The proxy script's own limit: it trains a fixed budget, so an hour means something is wrong.
PROXY_TIMEOUT_S = 3600
PROXY_TAIL_LINES = 40


def recipe_version(recipe: Recipe) -> str:
    """Which recipe made the data an eval scored: every section but the external command, which
    changes how results are produced elsewhere, not the data, and `scoring` (tables computed beyond
    those read change nothing read)."""
    sections = [name for name in Recipe.model_fields if name not in ("source", "evaluation", "scoring")]
    return recipe.fingerprint(*sections, *registry.PROXY_SECTIONS)


def eval_asset_kwargs(spec, recipe: Recipe) -> dict:
    """As every table's, except that an eval never joins the run of what it reads: it waits for the
    mix (or the exports) to finish and runs only if their content moved. An eval costs minutes to
    days; a mix re-run that draws the same rows must not start one."""
    kwargs = asset_spec_kwargs(spec, recipe)
    reads = [registry.read_spec(spec, name) for name in spec.reads_under(recipe)]
    reads_every_shard = any(read.scope is Scope.shard for read in reads)
    # Per-shard inputs (the features) settle in a shard's run, before the global run moves the mix: the
    # eval waits for the mix to move instead. A change of encoders moves the eval's code version too.
    ignores = [asset_key(read) for read in reads if read.scope is Scope.shard]
    condition = on_new_data(reads_every_shard, joins_runs=False, ignores=ignores)
    return {**kwargs, "automation_condition": condition}


def _local_root(data_root: DataRootResource) -> Path:
    root = data_root.data_root()
    if not root.is_local:
        raise Failure(
            f"eval sets and Pipes bundles need a local data root, this one is {root.root}: run the eval where "
            "the data root is mounted, or give eval sets absolute paths and a local data root"
        )
    return Path(root.root.path)


def _run_pipes(
    context, pipes: PipesSubprocessClient, command: list[str], log: Path, timeout_s: float, lines: int, **run
):
    """Run `command` under the launcher (output teed to `log`, killed after `timeout_s`); on failure,
    raise with its last output lines and record nothing."""
    wrapped = launcher_command(command, log, timeout_s)
    try:
        return pipes.run(command=wrapped, context=context, **run)
    except Exception as error:  # a non-zero exit (DagsterPipesExecutionError is not public API) or a lost session
        raise Failure(failure_message(command, log, lines)) from error


def build_eval_results_asset(recipe: Recipe):
    settings = recipe.evaluation
    fingerprint = recipe_version(recipe)
    check = AssetCheckSpec(
        SENSITIVITY_CHECK,
        asset=asset_key(EVAL_RESULTS),
        description=f"the proxy scores the mix's caption pairs above a copy with "
        f"{settings.sensitivity.shuffle_fraction:.0%} of their captions shuffled, beyond the seed spread "
        f"({settings.sensitivity.metric}); otherwise it cannot tell good data from bad here",
    )

    @asset(**eval_asset_kwargs(EVAL_RESULTS, recipe), kinds={"pytorch", "json"}, check_specs=[check])
    def eval_results(
        context: AssetExecutionContext,
        data_root: DataRootResource,
        pipes: PipesSubprocessClient,
        proxy_encoders: ProxyEncodersResource,
    ) -> MaterializeResult:
        # torch-heavy, so imported here: a run process that never evaluates (most) starts without torch.
        from curation_assets.evaluation.protocol import budget_pairs
        from curation_assets.evaluation.store_pools import (
            EvalSetFile,
            caption_pairs,
            eval_set_pairs,
            mixed_caption_ids,
            write_bundle,
        )

        store = data_root.store()
        local_root = _local_root(data_root)

        def encoders():
            return proxy_encoders.model

        curated = caption_pairs(store, "curated", mixed_caption_ids(store), encoders)
        # The proxy sees at most steps x batch pairs of a pool per seed: a larger unfiltered pool is
        # loaded as a stable sample of that size (and at least the curated pool's, for `random`).
        unfiltered = caption_pairs(store, "unfiltered", None, encoders, limit=max(budget_pairs(settings), len(curated)))
        cache = Path(store.folder(EVAL_RESULTS).path) / "eval_set_features"
        identity = settings.encoders.model_dump_json()
        eval_sets, eval_files = {}, {}
        for name, spec in settings.eval_sets.items():
            located = EvalSetFile(
                name,
                eval_set_file(spec.path, recipe.directory, local_root),
                eval_set_file(spec.image_root, recipe.directory, local_root) if spec.image_root else None,
            )
            eval_sets[name], sha = eval_set_pairs(located, cache, encoders, identity)
            eval_files[name] = {"path": spec.path, "sha256": sha}  # as the recipe names it
        context.log.info(
            f"proxy eval inputs: {len(curated)} mixed caption pairs, {len(unfiltered)} unfiltered pairs, eval sets "
            + ", ".join(f"{name} ({len(pairs)} pairs)" for name, pairs in eval_sets.items())
        )
        with tempfile.TemporaryDirectory(prefix="proxy-eval-") as work:
            work = Path(work)
            extras = {
                "pools": {"curated": [write_bundle(curated, work / "curated.parquet")]},
                "unfiltered": [write_bundle(unfiltered, work / "unfiltered.parquet")],
                "eval_sets": {
                    name: [write_bundle(pairs, work / f"eval-{name}.parquet")] for name, pairs in eval_sets.items()
                },
                "evaluation": settings.model_dump(mode="json", exclude={"external"}),
                "fingerprint": fingerprint,
                "report_path": str(work / "report.json"),
            }
            command = [sys.executable, "-m", PROXY_SCRIPT]
            invocation = _run_pipes(
                context, pipes, command, work / "proxy.log", PROXY_TIMEOUT_S, PROXY_TAIL_LINES, extras=extras
            )
            report = json.loads((work / "report.json").read_text())
        report["eval_set_files"] = eval_files
        report["recipe_fingerprint"] = fingerprint
        store.write_json(EVAL_RESULTS, report)
        results = invocation.get_results()
        reported = [result for result in results if isinstance(result, MaterializeResult)]
        check_results = [result for result in results if isinstance(result, AssetCheckResult)]
        if len(reported) != 1:
            raise Failure(f"the proxy script reported {len(reported)} materializations, expected 1")
        return MaterializeResult(
            metadata={
                **(reported[0].metadata or {}),
                "mix_version": mix_version(store.read(registry.MIX_TABLE)),
                "comparison": MetadataValue.md(comparison_markdown(report)),
                "report": MetadataValue.path(str(store.path(EVAL_RESULTS))),
            },
            check_results=check_results,
        )

    return eval_results


def _export_paths(store, work: Path, fingerprint: str, recipe: Recipe, local_root: Path) -> dict[str, str]:
    """The values of the external command's placeholders (settings.EXTERNAL_PLACEHOLDERS)."""
    exports = Path(store.folder(registry.EXPORTS).path)
    eval_dir = work / "eval_sets"
    eval_dir.mkdir(parents=True, exist_ok=True)
    for name, spec in recipe.evaluation.eval_sets.items():
        source = eval_set_file(spec.path, recipe.directory, local_root)
        (eval_dir / f"{name}{''.join(source.suffixes)}").symlink_to(source.resolve())
    output = work / "output"
    output.mkdir(parents=True, exist_ok=True)
    return {
        "python": sys.executable,
        "export_dir": str(exports),
        "llava_json": str(exports / layout.LLAVA_FILE),
        "image_folder": str(exports),
        "webdataset_dir": str(exports / layout.WEBDATASET_DIR),
        "dj_jsonl": str(exports / layout.data_juicer_file("caption")),
        "eval_dir": str(eval_dir),
        "output_dir": str(output),
        "fingerprint": fingerprint,
    }


def external_metadata(reported: dict) -> dict:
    """The command's metrics named `<benchmark>/<metric>` (numbers) become history keys
    `<benchmark>/external/<metric>`; anything else it reported stays as it is."""
    metadata = {}
    for key, value in reported.items():
        raw = getattr(value, "value", value)
        benchmark, _, metric = key.partition("/")
        if metric and isinstance(raw, int | float) and not isinstance(raw, bool):
            metadata[f"{benchmark}/external/{metric}"] = float(raw)
        else:
            metadata[key] = value
    return metadata


def build_external_results_asset(recipe: Recipe):
    external = recipe.evaluation.external
    fingerprint = recipe_version(recipe)

    checks = [AssetCheckSpec(name, asset=asset_key(EXTERNAL_RESULTS)) for name in external.checks]

    @asset(**eval_asset_kwargs(EXTERNAL_RESULTS, recipe), kinds={"python"}, check_specs=checks)
    def external_results(
        context: AssetExecutionContext, data_root: DataRootResource, pipes: PipesSubprocessClient
    ) -> MaterializeResult:
        store = data_root.store()
        local_root = _local_root(data_root)
        runs = Path(store.folder(EXTERNAL_RESULTS).path) / "runs"
        work = runs / context.run.run_id
        values = _export_paths(store, work, fingerprint, recipe, local_root)
        command = render_command(external.command, values)
        context.log.info(f"external eval: {' '.join(command)}")
        invocation = _run_pipes(
            context,
            pipes,
            command,
            work / "command.log",
            external.timeout_s,
            external.tail_lines,
            env=external.env,
            cwd=str(recipe.resolve_path(external.cwd)) if external.cwd else None,
        )
        results = invocation.get_results()
        reported = [result for result in results if isinstance(result, MaterializeResult)]
        check_results = [result for result in results if isinstance(result, AssetCheckResult)]
        metrics = external_metadata({k: v for result in reported for k, v in (result.metadata or {}).items()})
        if not reported:
            context.log.warning("the external command reported no metrics through dagster-pipes")
        store.write_json(
            EXTERNAL_RESULTS,
            {
                "command": command,
                "output_dir": values["output_dir"],
                "recipe_fingerprint": fingerprint,
                "metrics": {k: v for k, v in metrics.items() if isinstance(v, float)},
            },
        )
        return MaterializeResult(
            metadata={FINGERPRINT_KEY: fingerprint, **metrics, "output_dir": MetadataValue.path(values["output_dir"])},
            check_results=check_results,
        )

    return external_results


def _records(context: AssetExecutionContext, key: AssetKey) -> list[tuple[float, dict]]:
    """(timestamp, metadata) of every materialization of `key`, oldest first."""
    records, cursor = [], None
    while True:
        page = context.instance.fetch_materializations(key, limit=1000, cursor=cursor, ascending=True)
        for record in page.records:
            metadata = record.asset_materialization.metadata if record.asset_materialization else {}
            records.append((record.timestamp, {k: getattr(v, "value", v) for k, v in metadata.items()}))
        if not page.has_more:
            return records
        cursor = page.cursor


def build_eval_history_asset(recipe: Recipe):
    sources = [asset_key(registry.read_spec(EVAL_HISTORY, name)) for name in EVAL_HISTORY.reads_under(recipe)]

    # The history is cheap and only restates what an eval recorded: it joins the eval's run.
    @asset(**asset_spec_kwargs(EVAL_HISTORY, recipe), kinds={"polars", "parquet"})
    def eval_history(context: AssetExecutionContext, data_root: DataRootResource) -> MaterializeResult:
        table = history_table(record for key in sources for record in _records(context, key))
        store = data_root.store()
        store.write(EVAL_HISTORY, table)
        metrics = ["mean_r@5", *sorted(set(table.filter(pl.col("pool") == "external")["metric"].to_list()))]
        return MaterializeResult(
            metadata={
                "dagster/row_count": table.height,
                "recipe_versions": table["fingerprint"].n_unique(),
                **{f"by_recipe ({metric})": MetadataValue.md(history_markdown(table, metric)) for metric in metrics},
                "path": MetadataValue.path(str(store.path(EVAL_HISTORY))),
            }
        )

    return eval_history


def build_eval_assets(recipe: Recipe) -> list:
    """The eval assets this recipe asks for: none without eval sets or an external command."""
    built = []
    if registry.uses_proxy_eval(recipe):
        built.append(build_eval_results_asset(recipe))
    if registry.uses_external_eval(recipe):
        built.append(build_external_results_asset(recipe))
    if built:
        built.append(build_eval_history_asset(recipe))
    return built
