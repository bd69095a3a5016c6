"""Commands for dataset maintainers (`medaug diff`, `export`, `lineage`; `merge` is a job, jobs/cli.py)."""

from __future__ import annotations

import getpass
import json
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from review_queue.train_config import DEFAULT_BASE_MODEL, DEFAULT_TEMPLATE

RootOpt = Annotated[
    Path | None,
    typer.Option(
        "--root", envvar="MEDAUG_DATASETS", help="dataset store (default ./datasets; env MEDAUG_DATASETS)"
    ),
]
DatasetOpt = Annotated[str, typer.Option("--dataset", help="dataset name")]
ByOpt = Annotated[
    str | None, typer.Option("--by", help="maintainer name recorded in the manifest (default: $USER)")
]


def resolve_root(root: Path | None) -> Path:
    """--root, else MEDAUG_DATASETS, else ./datasets."""
    from review_queue.versions import default_root

    return root if root is not None else default_root()


def _fail(e: Exception) -> NoReturn:
    typer.echo(f"error: {e}", err=True)
    raise typer.Exit(2)


def register(app: typer.Typer) -> None:
    """Add the diff/export/lineage commands to `app` (heavy imports stay inside the commands)."""

    @app.command()
    def diff(
        dataset: DatasetOpt,
        version: Annotated[int, typer.Option("--version")],
        root: RootOpt = None,
        ids: Annotated[bool, typer.Option(help="list every added/removed id")] = False,
    ) -> None:
        """Compare a version with its parent: added/removed ids, counts per label/task/area/error type."""
        from review_queue.versions import ReleaseError
        from review_queue.versions import diff as diff_versions

        try:
            d = diff_versions(resolve_root(root), dataset, version)
        except ReleaseError as e:
            _fail(e)
        typer.echo(
            f"{dataset} v{d.version} vs {f'v{d.parent}' if d.parent else 'empty'}: "
            f"+{len(d.added)} added, -{len(d.removed)} removed"
        )
        for col, values in d.counts.items():
            typer.echo(f"  {col}:")
            for v, c in values.items():
                typer.echo(f"    {v:<24} {c['parent']:>8} -> {c['version']:>8}  ({c['delta']:+d})")
        if ids:
            for i in d.added:
                typer.echo(f"+ {i}")
            for i in d.removed:
                typer.echo(f"- {i}")

    @app.command()
    def export(
        dataset: DatasetOpt,
        fmt: Annotated[str, typer.Option("--format", help="alpaca | sharegpt | llamafactory | hf")],
        version: Annotated[int | None, typer.Option("--version", help="default: latest")] = None,
        split: Annotated[
            str, typer.Option(help="none | label | preference (negatives as chosen/rejected pairs)")
        ] = "none",
        style: Annotated[str, typer.Option(help="llamafactory data files: alpaca | sharegpt")] = "alpaca",
        out: Annotated[Path | None, typer.Option(help="default: <version>/exports/<format>")] = None,
        root: RootOpt = None,
        by: ByOpt = None,
        base_model: Annotated[
            str,
            typer.Option(
                help="llamafactory: model_name_or_path of the training configs (hub id or local folder)"
            ),
        ] = DEFAULT_BASE_MODEL,
        template: Annotated[
            str, typer.Option(help="llamafactory: chat template of the training configs")
        ] = DEFAULT_TEMPLATE,
        quotas: Annotated[
            Path | None,
            typer.Option(
                help="generate job config whose quotas the datasheet's bias report compares against "
                "(default: the configs of the generate runs found under --runs-dir)"
            ),
        ] = None,
        runs_dir: Annotated[Path, typer.Option(help="where the generate runs' folders are")] = Path("runs"),
    ) -> None:
        """Export a version (Alpaca JSON, ShareGPT JSONL, LLaMA-Factory folder + training configs, HF parquet)
        with a datasheet (balance, bias)."""
        from review_queue.export import export_version
        from review_queue.versions import ReleaseError

        try:
            res = export_version(
                resolve_root(root),
                dataset,
                version,
                fmt,
                split=split,
                out=out,
                style=style,
                created_by=by or getpass.getuser(),
                base_model=base_model,
                template=template,
                quotas_config=quotas,
                runs_dir=runs_dir,
            )
        except ReleaseError as e:
            _fail(e)
        typer.echo(f"{dataset} v{res.version} → {res.path} ({fmt}, split {split})")
        for f, n in res.files.items():
            typer.echo(f"  {f}: {n} rows")
        for f, n in res.kept.items():
            typer.echo(
                f"  {f}: {n if n is not None else '?'} rows (kept from an earlier export of another split)"
            )
        if res.negatives_without_reference:
            typer.echo(f"  {res.negatives_without_reference} negatives without reference_output: no pair")
        for cfg in res.training_configs:
            typer.echo(f"  train: llamafactory-cli train {res.path / cfg}")

    @app.command()
    def lineage(
        dataset: DatasetOpt,
        sample: Annotated[str, typer.Option("--id", help="sample id")],
        version: Annotated[int | None, typer.Option("--version")] = None,
        root: RootOpt = None,
    ) -> None:
        """Show one released row's queue item, reviews, arbitration, run, template, parent and augmentation."""
        from review_queue.versions import ReleaseError, lineage_of, version_dir

        try:
            info: dict[str, Any] = lineage_of(version_dir(resolve_root(root), dataset, version), sample)
        except ReleaseError as e:
            _fail(e)
        typer.echo(json.dumps(info, ensure_ascii=False, indent=2, default=str))
