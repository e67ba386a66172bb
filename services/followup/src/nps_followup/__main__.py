"""`nps-followup serve|migrate`."""

from nps_followup.bootstrap import build
from nps_followup.config import FollowupSettings
from nps_kit import cli


def main() -> None:
    settings = FollowupSettings()
    cli.main(
        service="followup",
        log=settings.log,
        host=settings.host,
        port=settings.port,
        build=lambda: build(settings),
        migrations=("nps_followup", settings.database.url),
    )


if __name__ == "__main__":
    main()
