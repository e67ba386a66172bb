"""`nps-notify serve|migrate`."""

from nps_kit import cli
from nps_kit.logging import configure_logging
from nps_kit.migrations import upgrade
from nps_kit.service import serve
from nps_notify.bootstrap import build
from nps_notify.config import NotifySettings


def main() -> None:
    settings = NotifySettings()
    configure_logging(settings.log, service="notify")

    async def run() -> int:
        notify = build(settings)
        return await serve(notify.app, notify.infra.runtime, host=settings.host, port=settings.port)

    def migrate() -> None:
        upgrade("nps_notify", settings.database.url.get_secret_value())

    cli.main(service="notify", serve=run, migrate=migrate)


if __name__ == "__main__":
    main()
