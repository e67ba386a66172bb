"""`nps-notify serve|migrate`."""

from nps_kit import cli
from nps_notify.bootstrap import build, erase_customer
from nps_notify.config import NotifySettings


def main() -> None:
    settings = NotifySettings()
    cli.main(
        service="notify",
        log=settings.log,
        http=settings.http,
        host=settings.host,
        port=settings.port,
        build=lambda: build(settings),
        migrations=("nps_notify", settings.database.url),
        erase=lambda customer_id: erase_customer(settings, customer_id),
    )


if __name__ == "__main__":
    main()
