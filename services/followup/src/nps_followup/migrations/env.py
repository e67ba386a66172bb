from nps_kit.migrations import run_env
from nps_followup.adapters.tables import metadata

run_env(metadata)
