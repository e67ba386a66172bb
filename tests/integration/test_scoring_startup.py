"""scoring refuses to start on an invalid theme taxonomy, saying where it is wrong."""

import os
import subprocess
import sys
from pathlib import Path


def test_scoring_refuses_to_serve_with_an_invalid_taxonomy_naming_the_line(
    tmp_path: Path,
) -> None:
    themes = tmp_path / "themes.yaml"
    themes.write_text(
        "languages:\n  en: {stemmer: english}\nthemes:\n  price:\n    label: Price\n"
        "    terms:\n      fr: [prix]\n",
        encoding="utf-8",
    )
    done = subprocess.run(
        [sys.executable, "-m", "nps_scoring", "serve"],
        env={
            **os.environ,
            "SCORING_THEMES_FILE": str(themes),
            "DATABASE_URL": "postgresql+asyncpg://nobody@127.0.0.1:1/none",
            "LOG_FORMAT": "json",
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    output = done.stdout + done.stderr
    assert f"{themes}:7: themes.price.terms.fr" in output
    assert "language 'fr' is not declared" in output
