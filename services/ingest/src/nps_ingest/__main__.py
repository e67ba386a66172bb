"""`nps-ingest serve|migrate`."""

from nps_ingest.bootstrap import build
from nps_ingest.config import IngestSettings
from nps_kit import cli


def main() -> None:
    settings = IngestSettings()
    cli.main(
        service="ingest",
        log=settings.log,
        host=settings.host,
        port=settings.port,
        build=lambda: build(settings),
        migrations=None,
    )


if __name__ == "__main__":
    main()
