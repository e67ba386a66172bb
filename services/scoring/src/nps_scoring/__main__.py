"""`nps-scoring serve|migrate`."""

from nps_kit import cli
from nps_scoring.bootstrap import build
from nps_scoring.config import ScoringSettings


def main() -> None:
    settings = ScoringSettings()
    cli.main(
        service="scoring",
        log=settings.log,
        host=settings.host,
        port=settings.port,
        build=lambda: build(settings),
        migrations=("nps_scoring", settings.database.url),
    )


if __name__ == "__main__":
    main()
