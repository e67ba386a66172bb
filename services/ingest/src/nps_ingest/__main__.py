"""`nps-ingest serve|migrate`."""

from nps_ingest.bootstrap import build
from nps_ingest.config import IngestSettings
from nps_kit import cli
from nps_kit.logging import configure_logging, get_logger
from nps_kit.service import serve


def main() -> None:
    settings = IngestSettings()
    configure_logging(settings.log, service="ingest")

    async def run() -> int:
        ingest = build(settings)
        return await serve(ingest.app, ingest.runtime, host=settings.host, port=settings.port)

    def migrate() -> None:
        get_logger(__name__).info(
            "migrate.nothing_to_do", reason="ingest keeps no state of its own yet"
        )

    cli.main(service="ingest", serve=run, migrate=migrate)


if __name__ == "__main__":
    main()
