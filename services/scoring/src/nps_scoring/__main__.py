"""`nps-scoring serve|migrate|rebuild-figures [--reclassify]`."""

import argparse
import asyncio
import sys

from nps_kit import cli
from nps_kit.logging import configure_logging, get_logger
from nps_scoring.adapters.taxonomy import TaxonomyError, load_taxonomy
from nps_scoring.bootstrap import build, erase_customer, rebuild
from nps_scoring.config import ScoringSettings


def rebuild_figures(settings: ScoringSettings) -> cli.Command:
    def configure(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--reclassify",
            action="store_true",
            help="find every comment's themes again with the configured taxonomy",
        )

    def run(args: argparse.Namespace) -> int:
        configure_logging(settings.log, service="scoring")
        counted = asyncio.run(rebuild(settings, reclassify=args.reclassify))
        get_logger(__name__).info(
            "figures.rebuilt", responses=counted, reclassified=args.reclassify
        )
        return 0

    return cli.Command(
        name="rebuild-figures",
        help="recompute NPS figures from the stored responses (after changing "
        "SCORING_FIGURES_TIMEZONE or the theme taxonomy), in one transaction",
        configure=configure,
        run=run,
    )


def check_taxonomy(settings: ScoringSettings) -> None:
    """Refuse to serve with an invalid theme taxonomy, saying where it is wrong."""
    try:
        load_taxonomy(settings.themes_file)
    except TaxonomyError as error:
        problem = str(error)
    else:
        return
    # The operator's own file, no customer data: its text (file, line, key) is the message.
    # Logged outside the `except`, where the logging safety net would keep only the class.
    configure_logging(settings.log, service="scoring")
    get_logger(__name__).error("themes.invalid", error=problem)
    raise SystemExit(2)


def main() -> None:
    settings = ScoringSettings()
    if sys.argv[1:2] == ["serve"]:
        check_taxonomy(settings)
    cli.main(
        service="scoring",
        log=settings.log,
        http=settings.http,
        host=settings.host,
        port=settings.port,
        build=lambda: build(settings),
        migrations=("nps_scoring", settings.database.url),
        erase=lambda customer_id: erase_customer(settings, customer_id),
        commands=[rebuild_figures(settings)],
    )


if __name__ == "__main__":
    main()
