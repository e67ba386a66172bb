from nps_console.adapters.tables import metadata
from nps_kit.migrations import run_env

run_env(metadata)
