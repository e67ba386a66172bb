"""`nps-notify serve|migrate`."""

from nps_kit import cli
from nps_notify.bootstrap import build
from nps_notify.config import NotifySettings


def main() -> None:
    settings = NotifySettings()
    cli.main(
        service="notify",
        log=settings.log,
        host=settings.host,
        port=settings.port,
        build=lambda: build(settings),
        migrations=("nps_notify", settings.database.url),
    )


if __name__ == "__main__":
    main()
