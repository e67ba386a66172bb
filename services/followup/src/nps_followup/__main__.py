"""`nps-followup serve|migrate`."""

from nps_followup.bootstrap import build
from nps_followup.config import FollowupSettings
from nps_kit import cli
from nps_kit.logging import configure_logging
from nps_kit.migrations import upgrade
from nps_kit.service import serve


def main() -> None:
    settings = FollowupSettings()
    configure_logging(settings.log, service="followup")

    async def run() -> int:
        followup = build(settings)
        return await serve(
            followup.app, followup.infra.runtime, host=settings.host, port=settings.port
        )

    def migrate() -> None:
        upgrade("nps_followup", settings.database.url.get_secret_value())

    cli.main(service="followup", serve=run, migrate=migrate)


if __name__ == "__main__":
    main()
