"""`nps-scoring serve|migrate`."""

from nps_kit import cli
from nps_kit.logging import configure_logging
from nps_kit.migrations import upgrade
from nps_kit.service import serve
from nps_scoring.bootstrap import build
from nps_scoring.config import ScoringSettings


def main() -> None:
    settings = ScoringSettings()
    configure_logging(settings.log, service="scoring")

    async def run() -> int:
        scoring = build(settings)
        return await serve(
            scoring.app, scoring.infra.runtime, host=settings.host, port=settings.port
        )

    def migrate() -> None:
        upgrade("nps_scoring", settings.database.url.get_secret_value())

    cli.main(service="scoring", serve=run, migrate=migrate)


if __name__ == "__main__":
    main()
