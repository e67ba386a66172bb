from nps_kit.migrations import run_env
from nps_scoring.adapters.tables import metadata

run_env(metadata)
