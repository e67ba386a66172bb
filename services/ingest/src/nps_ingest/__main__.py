"""`nps-ingest serve|migrate`."""

import sys

from nps_ingest.bootstrap import build
from nps_ingest.config import IngestSettings, SourcesError, load_sources
from nps_kit import cli


def main() -> None:
    settings = IngestSettings()
    try:
        # Read and validate the sources once, before serving: a wrong file is a clear message
        # and exit status 2, not a traceback from inside the server.
        sources = load_sources(settings)
    except SourcesError as exc:
        sys.stderr.write(f"nps-ingest: invalid sources: {exc}\n")
        raise SystemExit(2) from None
    cli.main(
        service="ingest",
        log=settings.log,
        http=settings.http,
        host=settings.host,
        port=settings.port,
        build=lambda: build(settings, sources=sources),
        migrations=None,
    )


if __name__ == "__main__":
    main()
