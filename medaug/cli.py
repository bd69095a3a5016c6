"""The `medaug` command. Each stage package contributes its own commands; this file only wires them."""

from __future__ import annotations

import typer

from augmenters.cli import register as register_augmenters
from curation.cli import register as register_curation
from curation.dedup_cli import register as register_dedup
from generators.cli import register as register_generators
from jobs.cli import register as register_jobs
from review_queue.cli import register as register_review_queue
from review_queue.release_cli import register as register_release

app = typer.Typer(
    name="medaug",
    help="Medical fine-tuning data: generate, augment, curate, review, merge, export.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

for register in (
    register_jobs,
    register_generators,
    register_augmenters,
    register_curation,
    register_dedup,
    register_review_queue,
    register_release,
):
    register(app)


if __name__ == "__main__":
    app()
