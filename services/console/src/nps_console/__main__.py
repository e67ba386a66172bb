"""`nps-console serve|migrate`."""

import sys

from nps_console.bootstrap import MISSING_KEY, build
from nps_console.config import ConsoleSettings
from nps_kit import cli


def main() -> None:
    settings = ConsoleSettings()
    if not settings.session_key_list and sys.argv[1:2] == ["serve"] and "--help" not in sys.argv:
        raise SystemExit(MISSING_KEY)
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
