"""`nps-notify serve|migrate`."""

import sys

from nps_kit import cli
from nps_notify.bootstrap import build, erase_customer
from nps_notify.config import NotifySettings


def main() -> None:
    settings = NotifySettings()
    if sys.argv[1:2] == ["erase-customer"]:
        raise SystemExit(
            cli.erase_customer(
                service="notify",
                log=settings.log,
                argv=sys.argv[2:],
                erase=lambda customer_id: erase_customer(settings, customer_id),
            )
        )
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
