"""`nps-console serve|migrate`."""

from nps_console.bootstrap import build
from nps_console.config import ConsoleSettings
from nps_kit import cli


def main() -> None:
    settings = ConsoleSettings()
    cli.main(
        service="console",
        log=settings.log,
        http=settings.http,
        host=settings.host,
        port=settings.port,
        build=lambda: build(settings),
        migrations=("nps_console", settings.database.url),
    )


if __name__ == "__main__":
    main()
